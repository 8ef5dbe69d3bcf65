// The playground: a conversation, the request's parameters, and answers streamed in.
// The request it sends is exactly what "View code" shows (without stream options), to
// Chat Completions or, as the API setting says, to the Responses API.

import { absorb, hasOutput, liveAnswer, newChoice, wavUrl } from "./answer.js";
import { catalog, stream } from "./api.js";
import { codeDialog, openCode, snippets } from "./code.js";
import { renderMessages } from "./conversation.js";
import { clear, h } from "./dom.js";
import { buildRequest, toolsAndSchema } from "./request.js";
import { eventReader, toResponses } from "./responses.js";
import { EXAMPLE_TOOLS, makeInputs, settingsPanel } from "./settings.js";

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

  const currentModel = () => state.catalog?.byName[inputs.model.value] || null;
  const render = () => renderMessages(messagesEl, state.messages, { render, run, model: currentModel });

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

  // The form's state shown as it is typed: problems with the tools or the schema, which
  // inputs apply, and the tool_choice options the tools allow.
  function validateLive() {
    const { problem, tools } = toolsAndSchema(inputs);
    inputs.tools_error.textContent = problem?.param === "tools" ? problem.message : "";
    inputs.schema_error.textContent = problem?.param === "schema" ? problem.message : "";
    inputs.tools.classList.toggle("invalid", problem?.param === "tools");
    inputs.schema.classList.toggle("invalid", problem?.param === "schema");
    inputs.schema.hidden = inputs.response_format.value !== "json_schema";
    inputs.top_logprobs.disabled = !inputs.logprobs.checked;
    inputs.metadata.disabled = !inputs.store.checked;
    inputs.voice.disabled = !inputs.audio.checked;
    const chosen = inputs.tool_choice.value;
    const options = ["auto", "none", "required", ...(tools || []).map((t) => `function:${t.function.name}`)];
    clear(inputs.tool_choice, options.map((o) => h("option", { value: o, selected: o === chosen }, o.replace("function:", "call "))));
    inputs.tool_choice.disabled = !tools;
    // What only Chat Completions has is off while the Responses API is chosen.
    const responses = inputs.api.value === "responses";
    for (const name of ["n", "presence_penalty", "frequency_penalty", "stop", "seed", "audio"]) inputs[name].disabled = responses;
    runButton.title = problem ? problem.message : "";
  }

  // The request of the form as it stands, or null after showing what is wrong with it.
  function checkedRequest() {
    try {
      const body = buildRequest(inputs, state.messages);
      if (inputs.api.value === "responses") toResponses(body); // what it cannot carry is named now
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
    const responses = inputs.api.value === "responses";
    const request = responses ? { ...toResponses(body), stream: true } : { ...body, stream: true, stream_options: { include_usage: true } };
    const chunkOf = responses ? eventReader() : (chunk) => chunk;
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
      for await (const event of stream(responses ? "/v1/responses" : "/v1/chat/completions", request, controller.signal)) {
        const chunk = chunkOf(event);
        if (!chunk) continue;
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

  function updateCapabilities() {
    const model = currentModel();
    inputs.audio_field.hidden = !model?.audio_output;
    if (!model?.audio_output) inputs.audio.checked = false;
    inputs.search_field.hidden = !model?.web_search;
    if (!model?.web_search) inputs.web_search.checked = false;
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

  // --- wiring -----------------------------------------------------------------------

  runButton.addEventListener("click", run);
  stopButton.addEventListener("click", () => state.controller?.abort());
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
    const responses = inputs.api.value === "responses";
    openCode(snippets(responses ? toResponses(body) : body, { baseUrl: `${location.origin}/v1`, keysRequired: state.catalog?.status.keys_required ?? true, responses }));
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

  render();
  validateLive();
  return { root, show: () => refreshModels(), keyChanged: () => refreshModels(true) };
}
