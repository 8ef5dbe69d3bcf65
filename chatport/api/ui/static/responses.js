// The Responses API in the playground: the form's chat request as the Responses request it
// stands for, and the stream of Responses events read as chat chunks, so that an answer is
// gathered and shown the same way whichever API asked for it.

import { ApiError } from "./api.js";
import { FormError } from "./request.js";

// Chat parameters the Responses API does not have, named as the form names them.
const CHAT_ONLY = { presence_penalty: "presence_penalty", frequency_penalty: "frequency_penalty", stop: "stop", seed: "seed" };

export function toResponses(chat) {
  if ((chat.n || 1) > 1) throw new FormError("n", "The Responses API gives one answer: leave n empty or 1.");
  if (chat.modalities) throw new FormError("audio", "Spoken answers come from Chat Completions only.");
  for (const [name, input] of Object.entries(CHAT_ONLY))
    if (chat[name] !== undefined) throw new FormError(input, `The Responses API has no ${name}: leave it empty.`);
  const body = { model: chat.model, input: [] };
  chat.messages.forEach((m, i) => {
    if (i === 0 && (m.role === "system" || m.role === "developer")) body.instructions = m.content;
    else if (m.role === "tool") body.input.push({ type: "function_call_output", call_id: m.tool_call_id, output: m.content });
    else if (m.role === "assistant") {
      if (m.content) body.input.push({ role: "assistant", content: m.content });
      for (const c of m.tool_calls || []) body.input.push({ type: "function_call", call_id: c.id, name: c.function.name, arguments: c.function.arguments });
    } else body.input.push({ role: m.role, content: inputContent(m.content, i) });
  });
  for (const name of ["temperature", "top_p", "metadata"]) if (chat[name] !== undefined) body[name] = chat[name];
  if (chat.max_completion_tokens !== undefined) body.max_output_tokens = chat.max_completion_tokens;
  if (chat.logprobs) {
    body.include = ["message.output_text.logprobs"];
    if (chat.top_logprobs !== undefined) body.top_logprobs = chat.top_logprobs;
  }
  if (chat.tools) body.tools = chat.tools.map((t) => ({ type: "function", ...t.function }));
  if (typeof chat.tool_choice === "string") body.tool_choice = chat.tool_choice;
  else if (chat.tool_choice) body.tool_choice = { type: "function", name: chat.tool_choice.function.name };
  const format = chat.response_format;
  if (format?.type === "json_object") body.text = { format: { type: "json_object" } };
  if (format?.type === "json_schema") body.text = { format: { type: "json_schema", ...format.json_schema } };
  body.store = Boolean(chat.store); // the Responses API stores by default; the form's box decides
  if (chat.web_search_options) (body.tools ||= []).push({ type: "web_search", ...chat.web_search_options });
  return body;
}

function inputContent(content, i) {
  if (typeof content === "string") return content;
  return content.map((part, j) => {
    if (part.type === "text") return { type: "input_text", text: part.text };
    if (part.type === "image_url") return { type: "input_image", image_url: part.image_url.url, detail: part.image_url.detail || "auto" };
    if (part.type === "file") return { type: "input_file", ...part.file };
    throw new FormError(`messages[${i}].content[${j}]`, "Audio goes to Chat Completions only.");
  });
}

// Reads one stream's events; each call gives the chat chunk an event stands for, or null.
export function eventReader() {
  const calls = new Map(); // function_call item id -> its index among the calls
  const one = (delta, logprobs = null) => ({ choices: [{ index: 0, delta, logprobs: logprobs && { content: logprobs } }] });
  return (event) => {
    switch (event.type) {
      case "response.output_text.delta":
        return one({ content: event.delta }, event.logprobs?.length ? event.logprobs : null);
      case "response.reasoning_text.delta":
        return one({ reasoning_content: event.delta });
      case "response.output_item.added": {
        if (event.item.type !== "function_call") return null;
        const index = calls.size;
        calls.set(event.item.id, index);
        return one({ tool_calls: [{ index, id: event.item.call_id, type: "function", function: { name: event.item.name, arguments: "" } }] });
      }
      case "response.function_call_arguments.delta":
        return one({ tool_calls: [{ index: calls.get(event.item_id), function: { arguments: event.delta } }] });
      case "response.output_text.annotation.added": {
        const { type, ...citation } = event.annotation;
        return one({ annotations: [{ type, url_citation: citation }] });
      }
      case "response.completed":
      case "response.incomplete":
        return finished(event.response, calls.size > 0);
      case "response.failed":
        throw new ApiError(500, { error: event.response.error || { message: "The response failed." } });
      case "error":
        throw new ApiError(500, { error: event });
      default:
        return null;
    }
  };
}

function finished(response, called) {
  const finish = response.status === "incomplete" ? "length" : called ? "tool_calls" : "stop";
  const u = response.usage;
  const usage = u && {
    prompt_tokens: u.input_tokens,
    completion_tokens: u.output_tokens,
    total_tokens: u.total_tokens,
    prompt_tokens_details: { cached_tokens: u.input_tokens_details?.cached_tokens ?? 0 },
    completion_tokens_details: { reasoning_tokens: u.output_tokens_details?.reasoning_tokens ?? 0 },
  };
  return { choices: [{ index: 0, delta: {}, finish_reason: finish }], usage };
}
