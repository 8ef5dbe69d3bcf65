// Runs the TypeScript SDK's documented calls against a chatport server and prints
// one JSON report; tests/e2e/test_node_sdk.py checks what it says.
import OpenAI, { BadRequestError, NotFoundError, AuthenticationError } from "openai";
import { zodResponseFormat } from "openai/helpers/zod";
import { z } from "zod";

const client = new OpenAI({ baseURL: process.env.CHATPORT_BASE_URL, apiKey: "unused", maxRetries: 0 });
const report = {};

const completion = await client.chat.completions.create({
  model: "gpt-4o",
  messages: [
    { role: "developer", content: "You are a helpful assistant." },
    { role: "user", content: "What is the capital of France?" },
  ],
  max_completion_tokens: 20,
});
report.create = {
  object: completion.object,
  content: completion.choices[0].message.content,
  finish_reason: completion.choices[0].finish_reason,
  total_tokens: completion.usage.total_tokens,
};

const raw = await client.chat.completions.create({
  model: "gpt-4o",
  messages: [{ role: "user", content: "Hello!" }],
  stream: true,
  stream_options: { include_usage: true },
  max_tokens: 10,
});
let text = "";
let usage = null;
let chunks = 0;
for await (const chunk of raw) {
  chunks += 1;
  text += chunk.choices[0]?.delta?.content || "";
  if (chunk.usage) usage = chunk.usage;
}
report.stream = { chunks, text, completion_tokens: usage?.completion_tokens };

const helper = client.chat.completions.stream({
  model: "gpt-4o",
  messages: [{ role: "user", content: "Write a haiku about coding" }],
  max_tokens: 30,
});
let deltas = "";
helper.on("content", (delta) => {
  deltas += delta;
});
const final = await helper.finalChatCompletion();
report.helper = { deltas, final: final.choices[0].message.content };

async function errorOf(call) {
  try {
    await call();
    return null;
  } catch (error) {
    return {
      badRequest: error instanceof BadRequestError,
      notFound: error instanceof NotFoundError,
      auth: error instanceof AuthenticationError,
      status: error.status,
      param: error.param ?? null,
      code: error.code ?? null,
    };
  }
}
report.badRequest = await errorOf(() =>
  client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }], top_logprobs: 21, logprobs: true }),
);
report.notFound = await errorOf(() =>
  client.chat.completions.create({ model: "nope", messages: [{ role: "user", content: "hi" }] }),
);

// Stored completions: create with store, retrieve, update, list with for-await paging,
// messages.list, delete.
const tag = `node-${Date.now()}`;
const made = [];
for (let i = 0; i < 5; i++) {
  const c = await client.chat.completions.create({
    model: "gpt-4o",
    messages: [{ role: "user", content: `Number ${i}` }],
    max_tokens: 2,
    store: true,
    metadata: { tag },
  });
  made.push(c.id);
}
const paged = [];
for await (const c of client.chat.completions.list({ metadata: { tag }, limit: 2 })) {
  paged.push(c.id);
}
const retrieved = await client.chat.completions.retrieve(made[0]);
const updated = await client.chat.completions.update(made[0], { metadata: { tag, seen: "yes" } });
const messages = [];
for await (const m of client.chat.completions.messages.list(made[0])) {
  messages.push({ id: m.id, role: m.role, content: m.content });
}
const deleted = await client.chat.completions.delete(made[0]);
const afterDelete = await errorOf(() => client.chat.completions.retrieve(made[0]));
report.stored = {
  made,
  paged,
  retrievedId: retrieved.id,
  updatedMetadata: updated.metadata,
  messages,
  deleted,
  afterDelete,
};

// Structured outputs with zod, and runTools.
const Color = z.object({ name: z.string().max(30), hex: z.string().max(10) });
const parsed = await client.chat.completions.parse({
  model: "gpt-4o",
  messages: [{ role: "user", content: "List 3 colors and their hex codes" }],
  response_format: zodResponseFormat(z.object({ colors: z.array(Color).max(3) }), "colors"),
  max_tokens: 300,
  temperature: 0,
});
report.parse = { parsed: parsed.choices[0].message.parsed, finish: parsed.choices[0].finish_reason };

// The tool of the checks below: one location, strict enough for small models.
const weather = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Get current weather for a location",
    parameters: {
      type: "object",
      properties: { location: { type: "string", maxLength: 40 } },
      required: ["location"],
      additionalProperties: false,
    },
  },
};
const seen = [];
const runner = client.chat.completions.runTools({
  model: "gpt-4o",
  messages: [{ role: "user", content: "What's the weather in Paris?" }],
  tools: [
    {
      ...weather,
      function: {
        ...weather.function,
        function: (args) => {
          seen.push(args);
          return { location: args.location, temperature: 21 };
        },
        parse: JSON.parse,
      },
    },
  ],
  tool_choice: { type: "function", function: { name: "get_weather" } },
  max_tokens: 100,
});
const finalContent = await runner.finalContent();
const toolMessages = runner.messages.filter((m) => m.role === "tool").length;
report.runTools = { seen, toolMessages, finalContentType: typeof finalContent };

// For the same request and seed, the stream (read by the SDK's helper) and create() give
// the same message; argument deltas fire as the arguments are produced.
const shape = (message) => ({
  content: message.content ?? null,
  calls: (message.tool_calls ?? []).map((c) => [c.function.name, c.function.arguments]),
});
report.consistency = [];
for (const tool_choice of ["auto", "required"]) {
  for (const seed of [1, 2, 3, 4]) {
    const body = {
      model: "gpt-4o",
      messages: [{ role: "user", content: "What's the weather in Rome?" }],
      tools: [weather],
      tool_choice,
      seed,
      temperature: 1,
      max_tokens: 80,
    };
    const created = await client.chat.completions.create(body);
    const stream = client.chat.completions.stream(body);
    let argumentDeltas = 0;
    let joined = "";
    stream.on("tool_calls.function.arguments.delta", (event) => {
      argumentDeltas += 1;
      joined += event.arguments_delta;
    });
    const streamed = await stream.finalChatCompletion();
    report.consistency.push({
      tool_choice,
      seed,
      created: shape(created.choices[0].message),
      streamed: shape(streamed.choices[0].message),
      finish: [created.choices[0].finish_reason, streamed.choices[0].finish_reason],
      argumentDeltas,
      joined,
    });
  }
}

async function runToolsOnce(stream) {
  const runner = client.chat.completions.runTools({
    model: "gpt-4o",
    messages: [{ role: "user", content: "What's the weather in Paris?" }],
    tools: [{ ...weather, function: { ...weather.function, function: (args) => ({ temperature: 21, ...args }), parse: JSON.parse } }],
    tool_choice: { type: "function", function: { name: "get_weather" } },
    max_tokens: 60,
    seed: 5,
    temperature: 1,
    stream,
  });
  await runner.finalContent();
  return runner.messages.filter((m) => m.role === "assistant").map(shape);
}
report.runToolsStreamed = { plain: await runToolsOnce(false), streamed: await runToolsOnce(true) };

// The seed's runTools example as written (auto tool choice, a tool result back each turn),
// greedy and capped so that a model that never answers still ends.
const seedRunner = client.chat.completions.runTools(
  {
    model: "gpt-4o",
    messages: [{ role: "user", content: "What's the weather in Boston and San Francisco?" }],
    tools: [
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "Get the current weather for a location",
          parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
          function: async ({ location }) => ({ temperature: 72, condition: "sunny", location }),
        },
      },
    ],
    temperature: 0,
    max_tokens: 150,
  },
  { maxChatCompletions: 4 },
);
const seedFinal = await seedRunner.finalContent();
report.seedRunTools = {
  finalContentType: typeof seedFinal,
  completions: seedRunner.allChatCompletions().map((c) => ({
    finish: c.choices[0].finish_reason,
    calls: (c.choices[0].message.tool_calls ?? []).length,
  })),
};

// A file part as the SDK docs show it (bare base64 with a filename), then the same prompt
// as the text the server documents for it: the second finds the first's prompt cached.
const question = { type: "text", text: "What does the document say?" };
const withFile = await client.chat.completions.create({
  model: "gpt-4o",
  messages: [{ role: "user", content: [question, { type: "file", file: { file_data: process.env.CHATPORT_PDF_B64, filename: "document.pdf" } }] }],
  max_completion_tokens: 5,
});
const typed = await client.chat.completions.create({
  model: "gpt-4o",
  messages: [{ role: "user", content: [question, { type: "text", text: process.env.CHATPORT_PDF_TEXT }] }],
  max_completion_tokens: 5,
});
report.file = {
  prompt_tokens: withFile.usage.prompt_tokens,
  typed_prompt_tokens: typed.usage.prompt_tokens,
  typed_cached_tokens: typed.usage.prompt_tokens_details.cached_tokens,
};

console.log(JSON.stringify(report));
