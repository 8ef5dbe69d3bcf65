// The TypeScript seed's web search example, unchanged but for the client's address, then
// the same request streamed through the SDK's stream helper; prints one JSON report that
// tests/e2e/test_web_search.py checks.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.CHATPORT_BASE_URL, apiKey: "unused", maxRetries: 0 });
const report = {};

const completion = await client.chat.completions.create({
  model: "gpt-4o",
  messages: [
    { role: "user", content: "What are the best restaurants near me?" },
  ],
  web_search_options: {
    search_context_size: "high",
    user_location: {
      type: "approximate",
      approximate: {
        city: "San Francisco",
        region: "California",
        country: "US",
        timezone: "America/Los_Angeles",
      },
    },
  },
});
const message = completion.choices[0].message;
report.whole = { content: message.content, annotations: message.annotations };

const stream = client.chat.completions.stream({
  model: "gpt-4o",
  messages: [{ role: "user", content: "What is the capital of France?" }],
  web_search_options: {},
  max_tokens: 30,
});
const streamed = await stream.finalChatCompletion();
report.stream = { content: streamed.choices[0].message.content, annotations: streamed.choices[0].message.annotations ?? null };

console.log(JSON.stringify(report));
