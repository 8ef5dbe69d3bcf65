// The Responses API through the official openai npm package (create, the stream helper,
// parse with zod, retrieve, input items, delete, a function-tool round trip with
// previous_response_id); prints one JSON report that tests/e2e/test_responses.py checks.
// It imports only openai and zod, so that it also runs beside the newest openai release.
import OpenAI from "openai";
import { VERSION } from "openai/version";
import { zodTextFormat } from "openai/helpers/zod";
import { z } from "zod";

const baseURL = process.env.CHATPORT_BASE_URL;
const apiKey = process.env.CHATPORT_API_KEY;
const model = process.env.CHATPORT_MODEL;
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const report = {};

const made = await client.responses.create({ model, input: "Say hello.", max_output_tokens: 24, temperature: 0 });
report.created = { id: made.id, status: made.status, text: made.output_text };
report.version = VERSION;
report.retrieved = (await client.responses.retrieve(made.id)).output_text;
const items = [];
for await (const item of client.responses.inputItems.list(made.id)) {
  items.push(item.content[0].text);
}
report.items = items;

const stream = client.responses.stream({ model, input: "Name a colour.", max_output_tokens: 200, temperature: 0 });
let deltas = "";
const kinds = [];
for await (const event of stream) {
  kinds.push(event.type);
  if (event.type === "response.output_text.delta") deltas += event.delta;
}
const final = await stream.finalResponse();
const finalText = final.output.filter((item) => item.type === "message").map((item) => item.content[0].text).join("");
report.stream = { deltas, kinds, text: finalText };

const Person = z.object({ name: z.string(), age: z.number() });
const parsed = await client.responses.parse({
  model,
  input: "Alice is 30 years old. Extract her.",
  text: { format: zodTextFormat(Person, "person") },
  temperature: 0,
});
report.parsed = parsed.output_parsed;

const tools = [
  {
    type: "function",
    name: "get_weather",
    description: "The weather in a city.",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false },
    strict: true,
  },
];
const first = await client.responses.create({
  model,
  input: "What is the weather in Paris?",
  tools,
  tool_choice: "required",
  parallel_tool_calls: false, // one call, whose output the next request gives
  temperature: 0,
});
const call = first.output.find((item) => item.type === "function_call");
const second = await client.responses.create({
  model,
  previous_response_id: first.id,
  input: [{ type: "function_call_output", call_id: call.call_id, output: "22 degrees and sunny" }],
  tools,
  tool_choice: "none", // an answer now, in words
  max_output_tokens: 40,
  temperature: 0,
});
report.call = { name: call.name, arguments: JSON.parse(call.arguments), answered: second.output_text.length > 0 };

await client.responses.delete(made.id);
try {
  await client.responses.retrieve(made.id);
  report.deleted = false;
} catch (error) {
  report.deleted = error.status === 404;
}

console.log(JSON.stringify(report));
