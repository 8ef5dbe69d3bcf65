// The TypeScript SDK docs' audio output example against a chatport server; tests/e2e/test_audio.py
// checks the JSON report this prints.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.CHATPORT_BASE_URL, apiKey: "unused", maxRetries: 0 });

const completion = await client.chat.completions.create({
  model: "gpt-4o-audio-preview",
  modalities: ["text", "audio"],
  audio: {
    voice: "alloy",
    format: "mp3",
  },
  messages: [
    {
      role: "user",
      content: "Tell me a bedtime story about a friendly dragon",
    },
  ],
});

const audioData = completion.choices[0].message.audio?.data;
const transcript = completion.choices[0].message.audio?.transcript;

const buffer = Buffer.from(audioData, "base64");
// An MP3 stream starts with an ID3 tag or a frame sync (11 set bits).
const mp3 = buffer.subarray(0, 3).toString("latin1") === "ID3" || (buffer[0] === 0xff && (buffer[1] & 0xe0) === 0xe0);
console.log(JSON.stringify({ content: completion.choices[0].message.content, transcript, bytes: buffer.length, mp3 }));
