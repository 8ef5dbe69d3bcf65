// The request the playground sends: built from the form and the conversation, each problem
// named by the request parameter it concerns (as the API would name it).

export class FormError extends Error {
  constructor(param, message) {
    super(message);
    this.param = param;
  }
}

export function findCall(messages, id) {
  for (const m of messages) for (const c of m.tool_calls || []) if (c.id === id) return c;
  return null;
}

export function buildRequest(inputs, messages) {
  const body = { model: inputs.model.value };
  if (!body.model) throw new FormError("model", "Pick a model.");
  body.messages = requestMessages(messages);
  const num = (name, integer = false) => {
    const raw = inputs[name].value.trim();
    if (raw === "") return;
    const value = Number(raw);
    if (!Number.isFinite(value) || (integer && !Number.isInteger(value)))
      throw new FormError(name, `Expected ${integer ? "a whole number" : "a number"}, got '${raw}'.`);
    body[name] = value;
  };
  num("temperature");
  num("top_p");
  num("max_completion_tokens", true);
  num("seed", true);
  num("n", true);
  num("presence_penalty");
  num("frequency_penalty");
  const stops = inputs.stop.value.split("\n").filter((s) => s !== "");
  if (stops.length) body.stop = stops.length === 1 ? stops[0] : stops;
  if (inputs.logprobs.checked) {
    body.logprobs = true;
    num("top_logprobs", true);
  }
  const tools = parseTools(inputs);
  if (tools) {
    body.tools = tools;
    const choice = inputs.tool_choice.value;
    if (choice.startsWith("function:")) body.tool_choice = { type: "function", function: { name: choice.slice(9) } };
    else if (choice !== "auto") body.tool_choice = choice;
  }
  const format = inputs.response_format.value;
  if (format === "json_object") body.response_format = { type: "json_object" };
  if (format === "json_schema") body.response_format = { type: "json_schema", json_schema: parseSchema(inputs) };
  if (inputs.store.checked) {
    body.store = true;
    const metadata = parseMetadata(inputs);
    if (metadata) body.metadata = metadata;
  }
  if (inputs.web_search.checked) body.web_search_options = { search_context_size: inputs.search_context_size.value };
  if (inputs.audio.checked) {
    body.modalities = ["text", "audio"];
    body.audio = { voice: inputs.voice.value, format: "pcm16" };
  }
  return body;
}

function requestMessages(messages) {
  const out = [];
  messages.forEach((msg, i) => {
    const text = msg.content ?? "";
    const parts = (msg._attachments || []).map((a) => a.part);
    if (msg.role === "tool") {
      if (!text.trim()) throw new FormError(`messages[${i}].content`, `Write the result of the ${findCall(messages, msg.tool_call_id)?.function.name || "tool"} call.`);
      out.push({ role: "tool", tool_call_id: msg.tool_call_id, content: text });
      return;
    }
    if (msg.role === "assistant" && (msg.tool_calls || msg.audio)) {
      const m = { role: "assistant" };
      if (msg.audio) m.audio = { id: msg.audio.id };
      else m.content = text || null;
      if (msg.tool_calls) m.tool_calls = msg.tool_calls;
      out.push(m);
      return;
    }
    if (!text.trim() && !parts.length) return; // an empty box is not a message
    const content = parts.length ? [...(text.trim() ? [{ type: "text", text }] : []), ...parts] : text;
    out.push({ role: msg.role, content });
  });
  if (!out.some((m) => m.role !== "system" && m.role !== "developer")) throw new FormError("messages", "Write a message.");
  return out;
}

export function parseTools(inputs) {
  const raw = inputs.tools.value.trim();
  if (!raw) return null;
  let tools;
  try {
    tools = JSON.parse(raw);
  } catch (e) {
    throw new FormError("tools", `Not valid JSON: ${e.message}`);
  }
  if (!Array.isArray(tools)) throw new FormError("tools", "Expected a JSON array of tools.");
  tools.forEach((tool, i) => {
    if (tool?.type !== "function" || typeof tool.function !== "object" || tool.function === null)
      throw new FormError("tools", `tools[${i}]: expected {"type": "function", "function": {...}}.`);
    if (typeof tool.function.name !== "string" || !/^[a-zA-Z0-9_-]{1,64}$/.test(tool.function.name))
      throw new FormError("tools", `tools[${i}].function.name: letters, digits, _ and - only, at most 64.`);
    const params = tool.function.parameters;
    if (params !== undefined && (typeof params !== "object" || params === null || Array.isArray(params)))
      throw new FormError("tools", `tools[${i}].function.parameters: expected a JSON Schema object.`);
  });
  return tools;
}

function parseSchema(inputs) {
  let value;
  try {
    value = JSON.parse(inputs.schema.value);
  } catch (e) {
    throw new FormError("schema", `Not valid JSON: ${e.message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new FormError("schema", "Expected a JSON object.");
  // {name, schema, strict} as the API takes it, or a bare JSON Schema.
  const spec = "schema" in value ? value : { name: "response", strict: true, schema: value };
  if (typeof spec.name !== "string" || !/^[a-zA-Z0-9_-]{1,64}$/.test(spec.name))
    throw new FormError("schema", "name: letters, digits, _ and - only, at most 64.");
  if (typeof spec.schema !== "object" || spec.schema === null || Array.isArray(spec.schema))
    throw new FormError("schema", "schema: expected a JSON Schema object.");
  return spec;
}

function parseMetadata(inputs) {
  const lines = inputs.metadata.value.split("\n").filter((l) => l.trim());
  if (!lines.length) return null;
  const out = {};
  for (const line of lines) {
    const at = line.indexOf("=");
    if (at <= 0) throw new FormError("metadata", `Expected key=value, got '${line}'.`);
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}

// What is wrong with the tools or the schema as they are typed (null: nothing), and the
// tools when they parse.
export function toolsAndSchema(inputs) {
  let problem = null;
  for (const check of [() => parseTools(inputs), () => inputs.response_format.value === "json_schema" && parseSchema(inputs)]) {
    try {
      check();
    } catch (e) {
      problem ||= e;
    }
  }
  let tools;
  try {
    tools = parseTools(inputs);
  } catch {
    tools = null;
  }
  return { problem, tools };
}
