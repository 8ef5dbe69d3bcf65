// The TypeScript SDK docs' image examples against a chatport server with a vision
// projector; tests/e2e/test_images.py checks the JSON report this prints.
import OpenAI, { BadRequestError } from "openai";

const client = new OpenAI({ baseURL: process.env.CHATPORT_BASE_URL, apiKey: "unused", maxRetries: 0 });
const imageUrl1 = process.env.CHATPORT_IMAGE_1;
const imageUrl2 = process.env.CHATPORT_IMAGE_2;
const report = {};

// "Multi-modal Example" (with detail: "high")
const one = await client.chat.completions.create({
  model: "gpt-4o",
  messages: [
    {
      role: "user",
      content: [
        { type: "text", text: "What's in this image?" },
        { type: "image_url", image_url: { url: imageUrl1, detail: "high" } },
      ],
    },
  ],
  max_completion_tokens: 8,
});
report.oneImage = { content: one.choices[0].message.content, prompt_tokens: one.usage.prompt_tokens };

// "Compare these two images"
const two = await client.chat.completions.create({
  model: "gpt-4o",
  messages: [
    {
      role: "user",
      content: [
        { type: "text", text: "Compare these two images:" },
        { type: "image_url", image_url: { url: imageUrl1 } },
        { type: "image_url", image_url: { url: imageUrl2 } },
      ],
    },
  ],
  max_completion_tokens: 8,
});
report.twoImages = { content: two.choices[0].message.content, prompt_tokens: two.usage.prompt_tokens };

try {
  await client.chat.completions.create({
    model: "gpt-4o",
    messages: [{ role: "user", content: [{ type: "text", text: "Hm?" }, { type: "image_url", image_url: { url: "data:image/png;base64,QUFB" } }] }],
  });
  report.badImage = "no error";
} catch (err) {
  report.badImage = err instanceof BadRequestError ? { status: err.status, param: err.param, code: err.code } : String(err);
}

console.log(JSON.stringify(report));
