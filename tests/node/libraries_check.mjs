// The JavaScript client libraries people point at local servers, unchanged but for the
// base URL: the Vercel AI SDK (Chat Completions provider) and @langchain/openai. Prints
// one JSON report; tests/e2e/test_node_libraries.py checks it.
import { createOpenAI } from "@ai-sdk/openai";
import { ChatOpenAI } from "@langchain/openai";
import { generateObject, generateText, streamText, tool } from "ai";
import { z } from "zod";

const baseURL = process.env.CHATPORT_BASE_URL;
const model = process.env.CHATPORT_MODEL;
const report = {};

// A nested model: its JSON schema nests one object in another.
const Person = z.object({
  name: z.string().max(40),
  age: z.number().int(),
  address: z.object({ street: z.string().max(60), city: z.string().max(40) }),
});
const askPerson = "Record Ada Lovelace, 36, who lives at 12 St James's Square, London.";

// --- the Vercel AI SDK ---------------------------------------------------------------
const provider = createOpenAI({ baseURL, apiKey: "x" });
const chat = provider.chat(model);

const text = await generateText({ model: chat, prompt: "Say hello.", temperature: 0, maxOutputTokens: 30 });
const streamed = streamText({ model: chat, prompt: "Say hello.", temperature: 0, maxOutputTokens: 30 });
let streamedText = "";
for await (const piece of streamed.textStream) streamedText += piece;
report.aiText = {
  text: text.text,
  streamed: streamedText,
  outputTokens: text.usage.outputTokens,
  streamedOutputTokens: (await streamed.usage).outputTokens,
  finishReason: text.finishReason,
};

const weather = tool({
  description: "Get the current weather for a location",
  inputSchema: z.object({ location: z.string().max(40) }),
});
const called = await generateText({
  model: chat,
  prompt: "What's the weather in Paris?",
  tools: { get_weather: weather },
  toolChoice: { type: "tool", toolName: "get_weather" },
  temperature: 0,
  maxOutputTokens: 100,
});
report.aiTool = called.toolCalls.map((c) => ({ name: c.toolName, input: c.input }));

const object = await generateObject({ model: chat, schema: Person, prompt: askPerson, temperature: 0, maxOutputTokens: 200 });
report.aiObject = object.object;

// --- @langchain/openai ---------------------------------------------------------------
const lc = new ChatOpenAI({ model, apiKey: "x", configuration: { baseURL }, temperature: 0, maxTokens: 200, maxRetries: 0 });
const lcText = await lc.invoke("Say hello.");
report.lcText = { content: lcText.content, outputTokens: lcText.usage_metadata?.output_tokens };
const lcWeather = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Get the current weather for a location",
    parameters: {
      type: "object",
      properties: { location: { type: "string", maxLength: 40 } },
      required: ["location"],
      additionalProperties: false,
    },
  },
};
const lcCall = await lc.bindTools([lcWeather], { tool_choice: "get_weather" }).invoke("What's the weather in Paris?");
report.lcTool = lcCall.tool_calls.map((c) => ({ name: c.name, args: c.args }));
report.lcObject = await lc.withStructuredOutput(Person, { name: "person", method: "jsonSchema" }).invoke(askPerson);

console.log(JSON.stringify(report));
