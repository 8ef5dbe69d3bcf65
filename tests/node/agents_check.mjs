// The OpenAI Agents SDK for JavaScript on its default (Responses) model with a function
// tool, against chatport; prints one JSON report that tests/e2e/test_responses.py checks.
import { Agent, OpenAIResponsesModel, run, setTracingDisabled, tool } from "@openai/agents";
import OpenAI from "openai";
import { z } from "zod";

setTracingDisabled(true);
const client = new OpenAI({ baseURL: process.env.CHATPORT_BASE_URL, apiKey: process.env.CHATPORT_API_KEY, maxRetries: 0 });
const model = new OpenAIResponsesModel(client, process.env.CHATPORT_MODEL);
const cities = [];
const getWeather = tool({
  name: "get_weather",
  description: "The weather in a city.",
  parameters: z.object({ city: z.string() }),
  execute: async ({ city }) => {
    cities.push(city);
    return `It is sunny in ${city}.`;
  },
});
const agent = new Agent({
  name: "weather",
  model,
  tools: [getWeather],
  modelSettings: { toolChoice: "required", temperature: 0 },
  toolUseBehavior: "stop_on_first_tool",
});
const called = await run(agent, "What is the weather in Paris?");
const plain = new Agent({ name: "plain", model, modelSettings: { temperature: 0, maxTokens: 400 } });
await run(plain, "Say hi."); // the prompt cached first, so both answers compared are computed alike
const streamed = await run(plain, "Say hi.", { stream: true });
for await (const _ of streamed) {
  // drained
}
await streamed.completed;
const whole = await run(plain, "Say hi.");
console.log(JSON.stringify({ cities, called: called.finalOutput, streamed: streamed.finalOutput, whole: whole.finalOutput }));
