// The Vercel AI SDK, whose OpenAI provider speaks the Responses API by default: a whole
// and a streamed answer; prints one JSON report that tests/e2e/test_responses.py checks.
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText } from "ai";

const provider = createOpenAI({ baseURL: process.env.CHATPORT_BASE_URL, apiKey: process.env.CHATPORT_API_KEY });
const model = provider(process.env.CHATPORT_MODEL);
const ask = { model, prompt: "Say hello.", temperature: 0, maxOutputTokens: 200 };
await generateText(ask); // the prompt cached first, so both answers compared are computed alike
const streamed = streamText(ask);
let text = "";
for await (const piece of streamed.textStream) text += piece;
const whole = await generateText(ask);
console.log(JSON.stringify({ text: whole.text, streamed: text, finish: whole.finishReason }));
