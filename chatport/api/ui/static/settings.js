// The playground's settings: one input per request parameter, and the panel that holds them.

import { field, h } from "./dom.js";

const VOICES = ["alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse"];
export const EXAMPLE_TOOLS = [
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

export function makeInputs() {
  const number = (id, attrs) => h("input", { id, type: "number", ...attrs });
  const inputs = {
    model: h("select", { id: "model" }),
    api: h(
      "select",
      { id: "api" },
      h("option", { value: "chat" }, "Chat Completions"),
      h("option", { value: "responses" }, "Responses"),
    ),
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
    web_search: h("input", { id: "web_search", type: "checkbox" }),
    search_context_size: h(
      "select",
      { id: "search_context_size" },
      ["low", "medium", "high"].map((v) => h("option", { value: v, selected: v === "medium" }, v)),
    ),
  };
  inputs.search_field = h("fieldset", { hidden: true }, h("legend", {}, "Web search"), h("label", { class: "check" }, inputs.web_search, "search the web first"), field("context size", inputs.search_context_size));
  inputs.audio_field = h("fieldset", { hidden: true }, h("legend", {}, "Spoken answer"), h("label", { class: "check" }, inputs.audio, "answer with audio"), field("voice", inputs.voice));
  return inputs;
}

export function settingsPanel(inputs, actions) {
  const pair = (a, b) => h("div", { class: "pair" }, a, b);
  return h(
    "aside",
    { class: "settings" },
    actions,
    field("Model", inputs.model),
    field("API", inputs.api),
    pair(field("temperature", inputs.temperature), field("top_p", inputs.top_p)),
    pair(field("max tokens", inputs.max_completion_tokens), field("seed", inputs.seed)),
    pair(field("presence penalty", inputs.presence_penalty), field("frequency penalty", inputs.frequency_penalty)),
    pair(field("n", inputs.n), h("div", { class: "field" }, h("label", { class: "check" }, inputs.logprobs, "logprobs"), field("top", inputs.top_logprobs))),
    field("stop", inputs.stop),
    h("fieldset", {}, h("legend", {}, "Tools ", inputs.example_tools), inputs.tools, inputs.tools_error, field("tool_choice", inputs.tool_choice)),
    h("fieldset", {}, h("legend", {}, "Response format"), inputs.response_format, inputs.schema, inputs.schema_error),
    h("fieldset", {}, h("legend", {}, "Stored completion"), h("label", { class: "check" }, inputs.store, "store"), inputs.metadata),
    inputs.audio_field,
    inputs.search_field,
  );
}

