// The playground: a conversation, the request's parameters, and answers streamed in.
// The request it sends is exactly what "View code" shows (without stream options).

import { catalog, markdownInto, stream } from "./api.js";
import { snippets } from "./code.js";
import { clear, field, h, hideTooltip, ms, showTooltip } from "./dom.js";

const VOICES = ["alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse"];
const EXAMPLE_TOOLS = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Get the current weather in a city",
      parameters: {
        type: "object",
        properties: { city: { type: "string" } },
        required: ["city"],
        additionalProperties: false,
      },
      strict: true,
    },
  },
];
const EXAMPLE_SCHEMA = {
  name: "city",
  strict: true,
  schema: {
    type: "object",
    properties: { name: { type: "string" }, country: { type: "string" } },
    required: ["name", "country"],
    additionalProperties: false,
  },
};

// A problem in the form, named by the request parameter it concerns.
class FormError extends Error {
  constructor(param, message) {
    super(message);
    this.param = param;
  }
}

const state = {
  messages: [
    { role: "system", content: "You are a helpful assistant." },
    { role: "user", content: "" },
  ],
  controller: null, // the running request's AbortController
  catalog: null,
};

export function create(root) {
  const inputs = makeInputs();
  const messagesEl = h("div", { id: "messages", class: "messages" });
  const errorEl = h("div", { id: "error", class: "error banner", role: "alert", hidden: true });
  const runButton = h("button", { id: "run", type: "button", class: "primary" }, "Run");
  const stopButton = h("button", { id: "stop", type: "button", disabled: true }, "Stop");
  const codeButton = h("button", { id: "view-code", type: "button" }, "View code");
  const clearButton = h("button", { id: "clear", type: "button" }, "Clear");
  const addButton = h("button", { id: "add-message", type: "button" }, "+ Message");

  root.append(
    h(
      "div",
      { class: "playground" },
      h(
        "div",
        { class: "conversation" },
        messagesEl,
        h("div", { class: "row" }, addButton, h("span", { class: "spacer" }), clearButton),
        errorEl,
      ),
      // The actions sit at the top of the settings, which stay in view while an answer grows.
      settingsPanel(inputs, h("div", { class: "row actions" }, codeButton, h("span", { class: "spacer" }), stopButton, runButton)),
    ),
    codeDialog(),
  );

  function showError(err) {
    errorEl.hidden = !err;
    errorEl.textContent = err ? (err.param ? `${err.param}: ${err.message}` : err.message) : "";
    for (const el of root.querySelectorAll(".invalid")) el.classList.remove("invalid");
    if (err?.param && inputs[err.param]) inputs[err.param].classList.add("invalid");
  }

  function setRunning(running) {
    runButton.disabled = running;
    stopButton.disabled = !running;
  }

  function render() {
    clear(messagesEl, state.messages.map((msg, i) => messageView(msg, i)));
  }

  function messageView(msg, i) {
    const remove = h("button", { type: "button", class: "icon remove", title: "Remove", onclick: () => { state.messages.splice(i, 1); render(); } }, "×");
    if (msg.role === "tool") {
      const call = findCall(msg.tool_call_id);
      return h(
        "div",
        { class: "msg tool", dataset: { role: "tool" } },
        h("div", { class: "msg-head" }, h("span", { class: "role-label" }, `Result of ${call?.function.name || "tool"}`), h("code", { class: "muted" }, msg.tool_call_id), h("span", { class: "spacer" }), remove),
        contentBox(msg, "The tool's result (text or JSON)"),
      );
    }
    if (msg.role === "assistant" && msg._view && !msg._editing) {
      const edit = h("button", { type: "button", class: "small", onclick: () => { msg._editing = true; render(); } }, "Edit");
      return h(
        "div",
        { class: "msg assistant", dataset: { role: "assistant" } },
        h("div", { class: "msg-head" }, h("span", { class: "role-label" }, "assistant"), h("span", { class: "spacer" }), msg.tool_calls ? null : edit, remove),
        answerView(msg._view),
      );
    }
    const role = h(
      "select",
      { class: "role", "aria-label": "Role", onchange: (e) => { msg.role = e.target.value; render(); } },
      ["system", "developer", "user", "assistant"].map((r) => h("option", { value: r, selected: r === msg.role }, r)),
    );
    const head = h("div", { class: "msg-head" }, role, h("span", { class: "spacer" }), msg.role === "user" ? attachButton(msg) : null, remove);
    return h(
      "div",
      { class: `msg ${msg.role}`, dataset: { role: msg.role } },
      head,
      contentBox(msg, msg.role === "user" ? "Write a message (Ctrl+Enter runs)" : ""),
      msg._attachments?.length ? attachmentList(msg) : null,
    );
  }

  function contentBox(msg, placeholder) {
    return h("textarea", {
      class: "content",
      rows: Math.min(12, Math.max(2, (msg.content || "").split("\n").length)),
      placeholder,
      value: msg.content || "",
      oninput: (e) => {
        msg.content = e.target.value;
        if (msg._view) delete msg._view;
      },
      onkeydown: (e) => {
        if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
          e.preventDefault();
          run();
        }
      },
    });
  }

  function findCall(id) {
    for (const m of state.messages) for (const c of m.tool_calls || []) if (c.id === id) return c;
    return null;
  }

  function attachButton(msg) {
    const model = currentModel();
    const accept = ["application/pdf", "text/plain", "text/markdown", ".md", ".txt", ".pdf"];
    if (model?.vision) accept.push("image/png", "image/jpeg", "image/webp", "image/gif");
    if (model?.audio_input) accept.push("audio/wav", "audio/mpeg", ".wav", ".mp3");
    const picker = h("input", {
      type: "file",
      class: "attach-input",
      multiple: true,
      hidden: true,
      accept: accept.join(","),
      onchange: async (e) => {
        msg._attachments ||= [];
        for (const file of e.target.files) msg._attachments.push(await attachment(file));
        render();
      },
    });
    return h("span", {}, picker, h("button", { type: "button", class: "small attach", onclick: () => picker.click() }, "Attach"));
  }

  function attachmentList(msg) {
    return h(
      "div",
      { class: "attachments" },
      msg._attachments.map((a, i) =>
        h(
          "span",
          { class: "attachment" },
          a.part.type === "image_url" ? h("img", { src: a.part.image_url.url, alt: a.name }) : null,
          a.name,
          h("button", { type: "button", class: "icon", title: "Remove", onclick: () => { msg._attachments.splice(i, 1); render(); } }, "×"),
        ),
      ),
    );
  }

  function currentModel() {
    return state.catalog?.byName[inputs.model.value] || null;
  }

  // --- the request ------------------------------------------------------------------

  function buildRequest() {
    const body = { model: inputs.model.value };
    if (!body.model) throw new FormError("model", "Pick a model.");
    body.messages = requestMessages();
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
    const tools = parseTools();
    if (tools) {
      body.tools = tools;
      const choice = inputs.tool_choice.value;
      if (choice.startsWith("function:")) body.tool_choice = { type: "function", function: { name: choice.slice(9) } };
      else if (choice !== "auto") body.tool_choice = choice;
    }
    const format = inputs.response_format.value;
    if (format === "json_object") body.response_format = { type: "json_object" };
    if (format === "json_schema") body.response_format = { type: "json_schema", json_schema: parseSchema() };
    if (inputs.store.checked) {
      body.store = true;
      const metadata = parseMetadata();
      if (metadata) body.metadata = metadata;
    }
    if (inputs.audio.checked) {
      body.modalities = ["text", "audio"];
      body.audio = { voice: inputs.voice.value, format: "pcm16" };
    }
    return body;
  }

  function requestMessages() {
    const out = [];
    state.messages.forEach((msg, i) => {
      const text = msg.content ?? "";
      const parts = (msg._attachments || []).map((a) => a.part);
      if (msg.role === "tool") {
        if (!text.trim()) throw new FormError(`messages[${i}].content`, `Write the result of the ${findCall(msg.tool_call_id)?.function.name || "tool"} call.`);
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

  function parseTools() {
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

  function parseSchema() {
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

  function parseMetadata() {
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

  function validateLive() {
    let problem = null;
    for (const check of [parseTools, () => inputs.response_format.value === "json_schema" && parseSchema()]) {
      try {
        check();
      } catch (e) {
        problem ||= e;
      }
    }
    inputs.tools_error.textContent = problem?.param === "tools" ? problem.message : "";
    inputs.schema_error.textContent = problem?.param === "schema" ? problem.message : "";
    inputs.tools.classList.toggle("invalid", problem?.param === "tools");
    inputs.schema.classList.toggle("invalid", problem?.param === "schema");
    inputs.schema.hidden = inputs.response_format.value !== "json_schema";
    inputs.top_logprobs.disabled = !inputs.logprobs.checked;
    inputs.metadata.disabled = !inputs.store.checked;
    inputs.voice.disabled = !inputs.audio.checked;
    let tools = null;
    try {
      tools = parseTools();
    } catch {
      tools = null;
    }
    const chosen = inputs.tool_choice.value;
    const options = ["auto", "none", "required", ...(tools || []).map((t) => `function:${t.function.name}`)];
    clear(inputs.tool_choice, options.map((o) => h("option", { value: o, selected: o === chosen }, o.replace("function:", "call "))));
    inputs.tool_choice.disabled = !tools;
    runButton.title = problem ? problem.message : "";
  }

  // --- running ----------------------------------------------------------------------

  // The request of the form as it stands, or null after showing what is wrong with it.
  function checkedRequest() {
    try {
      const body = buildRequest();
      showError(null);
      return body;
    } catch (err) {
      showError(err);
      return null;
    }
  }

  async function run() {
    if (state.controller) return;
    const body = checkedRequest();
    if (!body) return;
    for (const msg of state.messages) delete msg._editing;
    const request = { ...body, stream: true, stream_options: { include_usage: true } };
    const controller = new AbortController();
    state.controller = controller;
    setRunning(true);
    render();
    const live = liveAnswer(body.n || 1);
    messagesEl.append(live.el);
    const started = performance.now();
    let first = null;
    const choices = [];
    let usage = null;
    let error = null;
    let stopped = false;
    try {
      for await (const chunk of stream("/v1/chat/completions", request, controller.signal)) {
        if (chunk.usage) usage = chunk.usage;
        for (const c of chunk.choices || []) {
          const acc = (choices[c.index] ||= newChoice());
          if (first === null && hasOutput(c.delta)) first = performance.now();
          absorb(acc, c);
          live.update(c.index, acc);
        }
      }
    } catch (err) {
      if (err.name === "AbortError") stopped = true;
      else error = err;
    } finally {
      state.controller = null;
      setRunning(false);
    }
    const end = performance.now();
    const stats = {
      usage,
      stopped,
      ttft: first === null ? null : (first - started) / 1000,
      tps: usage && first !== null && end > first ? usage.completion_tokens / ((end - first) / 1000) : null,
    };
    await live.settle();
    choices.forEach((choice, i) => (choice.html = live.html(i))); // rendered once, kept
    live.el.remove();
    if (error) showError(error);
    if (!choices.length) {
      render();
      return;
    }
    keepAnswer(choices, stats);
    render();
    messagesEl.querySelector(".msg:last-child textarea")?.focus();
  }

  function keepAnswer(choices, stats) {
    const first = choices[0] || newChoice();
    const msg = { role: "assistant", content: first.content || first.transcript || null };
    if (first.tool_calls.length) msg.tool_calls = first.tool_calls;
    if (first.audio_id) msg.audio = { id: first.audio_id };
    msg._view = { choices: choices.map((c) => ({ ...c, audioUrl: c.audio.length ? wavUrl(c.audio) : null })), stats };
    state.messages.push(msg);
    if (msg.tool_calls) for (const call of msg.tool_calls) state.messages.push({ role: "tool", tool_call_id: call.id, content: "" });
    else if (!stats.stopped) state.messages.push({ role: "user", content: "" });
  }

  function stop() {
    state.controller?.abort();
  }

  // --- wiring -----------------------------------------------------------------------

  runButton.addEventListener("click", run);
  stopButton.addEventListener("click", stop);
  addButton.addEventListener("click", () => {
    const last = state.messages.at(-1);
    state.messages.push({ role: last?.role === "user" ? "assistant" : "user", content: "" });
    render();
  });
  clearButton.addEventListener("click", () => {
    state.messages = [state.messages[0]?.role === "system" ? { ...state.messages[0], _view: undefined } : { role: "system", content: "" }, { role: "user", content: "" }];
    showError(null);
    render();
  });
  codeButton.addEventListener("click", () => {
    const body = checkedRequest();
    if (!body) return;
    openCode(snippets(body, { baseUrl: `${location.origin}/v1`, keysRequired: state.catalog?.status.keys_required ?? true }));
  });
  for (const el of Object.values(inputs)) if (el instanceof HTMLElement) el.addEventListener("input", validateLive);
  inputs.model.addEventListener("change", () => {
    updateCapabilities();
    render();
  });
  inputs.example_tools.addEventListener("click", () => {
    inputs.tools.value = JSON.stringify(EXAMPLE_TOOLS, null, 2);
    validateLive();
  });

  function updateCapabilities() {
    const model = currentModel();
    inputs.audio_field.hidden = !model?.audio_output;
    if (!model?.audio_output) inputs.audio.checked = false;
    validateLive();
  }

  async function refreshModels(force = false) {
    if (state.catalog && !force) return;
    try {
      state.catalog = await catalog();
      showError(null);
    } catch (err) {
      showError(err);
      return;
    }
    const chosen = inputs.model.value;
    clear(inputs.model, state.catalog.names.map((name) => h("option", { value: name, selected: name === chosen }, name)));
    updateCapabilities();
    render();
  }

  render();
  validateLive();
  return { root, show: () => refreshModels(), keyChanged: () => refreshModels(true) };
}

// --- the settings panel ---------------------------------------------------------------

function makeInputs() {
  const number = (id, attrs) => h("input", { id, type: "number", ...attrs });
  const inputs = {
    model: h("select", { id: "model" }),
    temperature: number("temperature", { step: "0.1", min: "0", max: "2", placeholder: "1" }),
    top_p: number("top_p", { step: "0.05", min: "0", max: "1", placeholder: "1" }),
    max_completion_tokens: number("max_completion_tokens", { min: "1", placeholder: "up to the context" }),
    seed: number("seed", { placeholder: "random" }),
    n: number("n", { min: "1", max: "8", placeholder: "1" }),
    presence_penalty: number("presence_penalty", { step: "0.1", min: "-2", max: "2", placeholder: "0" }),
    frequency_penalty: number("frequency_penalty", { step: "0.1", min: "-2", max: "2", placeholder: "0" }),
    stop: h("textarea", { id: "stop_sequences", rows: 2, placeholder: "one per line (up to 4)" }),
    logprobs: h("input", { id: "logprobs", type: "checkbox" }),
    top_logprobs: number("top_logprobs", { min: "0", max: "20", value: "5" }),
    tools: h("textarea", { id: "tools", rows: 6, class: "code", spellcheck: "false", placeholder: '[{"type": "function", "function": {...}}]' }),
    tools_error: h("div", { id: "tools-error", class: "error small-text" }),
    example_tools: h("button", { type: "button", class: "small", id: "example-tools" }, "Example"),
    tool_choice: h("select", { id: "tool_choice" }),
    response_format: h(
      "select",
      { id: "response_format" },
      h("option", { value: "text" }, "text"),
      h("option", { value: "json_object" }, "JSON object"),
      h("option", { value: "json_schema" }, "JSON schema"),
    ),
    schema: h("textarea", { id: "schema", rows: 8, class: "code", spellcheck: "false", value: JSON.stringify(EXAMPLE_SCHEMA, null, 2) }),
    schema_error: h("div", { id: "schema-error", class: "error small-text" }),
    store: h("input", { id: "store", type: "checkbox" }),
    metadata: h("textarea", { id: "metadata", rows: 2, placeholder: "key=value, one per line" }),
    audio: h("input", { id: "audio", type: "checkbox" }),
    voice: h("select", { id: "voice" }, VOICES.map((v) => h("option", { value: v }, v))),
  };
  inputs.audio_field = h("fieldset", { hidden: true }, h("legend", {}, "Spoken answer"), h("label", { class: "check" }, inputs.audio, "answer with audio"), field("voice", inputs.voice));
  return inputs;
}

function settingsPanel(inputs, actions) {
  const pair = (a, b) => h("div", { class: "pair" }, a, b);
  return h(
    "aside",
    { class: "settings" },
    actions,
    field("Model", inputs.model),
    pair(field("temperature", inputs.temperature), field("top_p", inputs.top_p)),
    pair(field("max tokens", inputs.max_completion_tokens), field("seed", inputs.seed)),
    pair(field("presence penalty", inputs.presence_penalty), field("frequency penalty", inputs.frequency_penalty)),
    pair(field("n", inputs.n), h("div", { class: "field" }, h("label", { class: "check" }, inputs.logprobs, "logprobs"), field("top", inputs.top_logprobs))),
    field("stop", inputs.stop),
    h("fieldset", {}, h("legend", {}, "Tools ", inputs.example_tools), inputs.tools, inputs.tools_error, field("tool_choice", inputs.tool_choice)),
    h("fieldset", {}, h("legend", {}, "Response format"), inputs.response_format, inputs.schema, inputs.schema_error),
    h("fieldset", {}, h("legend", {}, "Stored completion"), h("label", { class: "check" }, inputs.store, "store"), inputs.metadata),
    inputs.audio_field,
  );
}

// --- answers ----------------------------------------------------------------------------

function newChoice() {
  return { content: "", reasoning: "", refusal: "", tool_calls: [], audio: [], transcript: "", audio_id: null, logprobs: [], finish_reason: null };
}

function hasOutput(delta) {
  return Boolean(delta && (delta.content || delta.reasoning_content || delta.refusal || delta.tool_calls || delta.audio));
}

function absorb(acc, choice) {
  const d = choice.delta || {};
  if (d.content) acc.content += d.content;
  if (d.reasoning_content) acc.reasoning += d.reasoning_content;
  if (d.refusal) acc.refusal += d.refusal;
  for (const tc of d.tool_calls || []) {
    const call = (acc.tool_calls[tc.index] ||= { id: "", type: "function", function: { name: "", arguments: "" } });
    if (tc.id) call.id = tc.id;
    if (tc.function?.name) call.function.name += tc.function.name;
    if (tc.function?.arguments) call.function.arguments += tc.function.arguments;
  }
  if (d.audio) {
    if (d.audio.id) acc.audio_id = d.audio.id;
    if (d.audio.data) acc.audio.push(d.audio.data);
    if (d.audio.transcript) acc.transcript += d.audio.transcript;
  }
  if (choice.logprobs?.content) acc.logprobs.push(...choice.logprobs.content);
  if (choice.finish_reason) acc.finish_reason = choice.finish_reason;
}

// The answer being streamed: one block per choice, Markdown re-rendered as text arrives.
function liveAnswer(n) {
  const blocks = [];
  const el = h("div", { class: "msg assistant pending", dataset: { role: "assistant" } }, h("div", { class: "msg-head" }, h("span", { class: "role-label" }, "assistant"), h("span", { class: "muted" }, " answering…")));
  for (let i = 0; i < n; i++) {
    const md = h("div", { class: "md" });
    const calls = h("div", { class: "tool-calls" });
    const block = h("div", { class: "choice", dataset: { index: i } }, n > 1 ? h("h4", {}, `Choice ${i}`) : null, md, calls);
    blocks.push({ md, markdown: markdownInto(md), calls });
    el.append(block);
  }
  return {
    el,
    update(index, acc) {
      const block = blocks[index];
      if (!block) return;
      block.markdown.set(asMarkdown(acc.content || acc.transcript || acc.refusal));
      clear(block.calls, acc.tool_calls.map(toolCallCard));
    },
    async settle() {
      await Promise.all(blocks.map((b) => b.markdown.settle()));
    },
    html(index) {
      return blocks[index]?.md.innerHTML ?? null;
    },
  };
}

function answerView(view) {
  const many = view.choices.length > 1;
  return h(
    "div",
    { class: "answer" },
    view.choices.map((choice, i) => {
      const md = h("div", { class: "md" });
      if (choice.html !== null && choice.html !== undefined) md.innerHTML = choice.html; // the server's rendering, kept
      else markdownInto(md).set(asMarkdown(choice.content || choice.transcript || choice.refusal));
      return h(
        "div",
        { class: "choice", dataset: { index: i } },
        many ? h("h4", {}, `Choice ${i}`) : null,
        choice.reasoning ? h("details", { class: "reasoning" }, h("summary", {}, "Reasoning"), h("div", { class: "pre" }, choice.reasoning)) : null,
        md,
        choice.tool_calls.length ? h("div", { class: "tool-calls" }, choice.tool_calls.map(toolCallCard)) : null,
        choice.audioUrl ? h("audio", { controls: true, src: choice.audioUrl, class: "spoken" }) : null,
        choice.logprobs.length ? tokenView(choice.logprobs) : null,
        h("div", { class: "finish muted" }, choice.finish_reason ? `finish_reason: ${choice.finish_reason}` : view.stats.stopped ? "stopped" : ""),
      );
    }),
    statsLine(view.stats),
  );
}

// An answer that is one JSON value (structured outputs, JSON mode) is shown as a JSON code
// block, so that Markdown does not take its underscores and asterisks for emphasis.
function asMarkdown(text) {
  const trimmed = text.trim();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    try {
      return `\`\`\`json\n${JSON.stringify(JSON.parse(trimmed), null, 2)}\n\`\`\``;
    } catch {
      // not (yet) whole JSON
    }
  }
  return text;
}

function toolCallCard(call) {
  let args = call.function.arguments;
  try {
    args = JSON.stringify(JSON.parse(args), null, 2);
  } catch {
    // still arriving, or not JSON: shown as it is
  }
  return h("div", { class: "tool-call" }, h("div", {}, h("span", { class: "badge" }, "tool call"), " ", h("strong", { class: "tool-name" }, call.function.name), " ", h("code", { class: "muted" }, call.id)), h("pre", { class: "tool-args" }, args));
}

function tokenView(logprobs) {
  return h(
    "div",
    { class: "tokens", "aria-label": "Tokens and their alternatives" },
    logprobs.map((entry) => {
      const p = Math.exp(entry.logprob);
      const span = h("span", { class: `tok${p < 0.5 ? " unsure" : ""}`, dataset: { p: p.toFixed(4) } }, entry.token);
      span.addEventListener("mouseenter", () =>
        showTooltip(
          span,
          h(
            "table",
            { class: "alternatives" },
            (entry.top_logprobs?.length ? entry.top_logprobs : [entry]).map((alt) =>
              h("tr", { class: alt.token === entry.token ? "chosen" : "" }, h("td", {}, h("code", {}, JSON.stringify(alt.token))), h("td", { class: "num" }, `${(Math.exp(alt.logprob) * 100).toFixed(1)}%`)),
            ),
          ),
        ),
      );
      span.addEventListener("mouseleave", hideTooltip);
      return span;
    }),
  );
}

function statsLine(stats) {
  const parts = [];
  const u = stats.usage;
  if (u) {
    const cached = u.prompt_tokens_details?.cached_tokens ?? 0;
    parts.push(`${u.prompt_tokens} prompt tokens (${cached} cached)`, `${u.completion_tokens} completion tokens`);
  }
  if (stats.ttft !== null) parts.push(`time to first token ${ms(stats.ttft)}`);
  if (stats.tps !== null) parts.push(`${stats.tps.toFixed(1)} tokens/s`);
  if (stats.stopped) parts.push("stopped");
  return h("div", { class: "stats muted" }, parts.join(" · "));
}

// Streamed pcm16 (24 kHz mono) pieces as a WAV the page can play.
function wavUrl(pieces) {
  const chunks = pieces.map((b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
  const size = chunks.reduce((n, c) => n + c.length, 0);
  const buffer = new ArrayBuffer(44 + size);
  const view = new DataView(buffer);
  const text = (at, s) => [...s].forEach((ch, i) => view.setUint8(at + i, ch.charCodeAt(0)));
  text(0, "RIFF");
  view.setUint32(4, 36 + size, true);
  text(8, "WAVE");
  text(12, "fmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, 24000, true);
  view.setUint32(28, 48000, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  text(36, "data");
  view.setUint32(40, size, true);
  let at = 44;
  for (const c of chunks) {
    new Uint8Array(buffer, at, c.length).set(c);
    at += c.length;
  }
  return URL.createObjectURL(new Blob([buffer], { type: "audio/wav" }));
}

function attachment(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onerror = () => reject(reader.error);
    reader.onload = () => {
      const url = reader.result;
      const type = file.type || "";
      let part;
      if (type.startsWith("image/")) part = { type: "image_url", image_url: { url } };
      else if (type.startsWith("audio/")) part = { type: "input_audio", input_audio: { data: url.slice(url.indexOf(",") + 1), format: /mpeg|mp3/.test(type) ? "mp3" : "wav" } };
      else part = { type: "file", file: { filename: file.name, file_data: url } };
      resolve({ name: file.name, part });
    };
    reader.readAsDataURL(file);
  });
}

// --- "View code" ------------------------------------------------------------------------

function codeDialog() {
  const pre = h("pre", { id: "code", class: "code-view" });
  const tabs = h("div", { class: "tabs", role: "tablist" });
  const copy = h("button", { type: "button", id: "copy-code" }, "Copy");
  const dialog = h(
    "dialog",
    { id: "code-dialog", class: "wide" },
    h("div", { class: "row" }, h("h2", {}, "View code"), h("span", { class: "spacer" }), tabs),
    pre,
    h("div", { class: "row end" }, copy, h("button", { type: "button", id: "close-code", onclick: () => dialog.close() }, "Close")),
  );
  copy.addEventListener("click", () => navigator.clipboard?.writeText(pre.textContent));
  dialog.present = (codes) => {
    const select = (lang) => {
      pre.textContent = codes[lang];
      pre.dataset.lang = lang;
      for (const t of tabs.children) t.classList.toggle("active", t.dataset.lang === lang);
    };
    clear(tabs, Object.keys(codes).map((lang) => h("button", { type: "button", class: "tab", dataset: { lang }, onclick: () => select(lang) }, { python: "Python", typescript: "TypeScript", curl: "curl" }[lang])));
    select(pre.dataset.lang || "python");
    dialog.showModal();
  };
  return dialog;
}

function openCode(codes) {
  document.getElementById("code-dialog").present(codes);
}
