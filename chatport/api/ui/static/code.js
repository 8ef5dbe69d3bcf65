// "View code": the playground's request as Python, TypeScript and curl, written against the
// official SDKs, for Chat Completions or the Responses API. The key is never written into
// the code: the SDKs read OPENAI_API_KEY.

import { clear, h } from "./dom.js";

// How each API's call is written and its answer shown.
const CHAT = { path: "chat/completions", python: "completion = client.chat.completions.create(", show: "completion.choices[0].message", tsCall: "client.chat.completions.create", name: "completion" };
const RESPONSES = { path: "responses", python: "response = client.responses.create(", show: "response.output_text", tsCall: "client.responses.create", name: "response" };

export function snippets(body, { baseUrl, keysRequired, responses = false }) {
  const api = responses ? RESPONSES : CHAT;
  return { python: python(body, baseUrl, keysRequired, api), typescript: typescript(body, baseUrl, keysRequired, api), curl: curl(body, baseUrl, keysRequired, api) };
}

function python(body, baseUrl, keysRequired, api) {
  const key = keysRequired ? "" : ', api_key=os.environ.get("OPENAI_API_KEY", "unused")';
  const args = Object.entries(body)
    .map(([name, value]) => `    ${name}=${pyValue(value, 1)},`)
    .join("\n");
  return [
    ...(keysRequired ? [] : ["import os", ""]),
    "from openai import OpenAI",
    "",
    `client = OpenAI(base_url=${JSON.stringify(baseUrl)}${key})`,
    "",
    api.python,
    args,
    ")",
    `print(${api.show})`,
    "",
  ].join("\n");
}

// A JSON value as a Python literal (JSON's string escapes are valid in Python strings).
function pyValue(value, depth) {
  const pad = "    ".repeat(depth + 1);
  const end = "    ".repeat(depth);
  if (value === null) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "number") return String(value); // 0.7, 42, 1e+21: all Python literals
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) {
    if (!value.length) return "[]";
    return `[\n${value.map((v) => `${pad}${pyValue(v, depth + 1)},`).join("\n")}\n${end}]`;
  }
  const entries = Object.entries(value);
  if (!entries.length) return "{}";
  return `{\n${entries.map(([k, v]) => `${pad}${JSON.stringify(k)}: ${pyValue(v, depth + 1)},`).join("\n")}\n${end}}`;
}

function typescript(body, baseUrl, keysRequired, api) {
  const key = keysRequired ? "" : ', apiKey: process.env.OPENAI_API_KEY ?? "unused"';
  return [
    'import OpenAI from "openai";',
    "",
    `const client = new OpenAI({ baseURL: ${JSON.stringify(baseUrl)}${key} });`,
    "",
    `const ${api.name} = await ${api.tsCall}(${JSON.stringify(body, null, 2)});`,
    `console.log(${api.show});`,
    "",
  ].join("\n");
}

function curl(body, baseUrl, keysRequired, api) {
  const json = JSON.stringify(body, null, 2).replaceAll("'", "'\\''");
  return [
    `curl ${baseUrl}/${api.path} \\`,
    '  -H "Content-Type: application/json" \\',
    ...(keysRequired ? ['  -H "Authorization: Bearer $OPENAI_API_KEY" \\'] : []),
    `  -d '${json}'`,
    "",
  ].join("\n");
}

// --- the dialog -------------------------------------------------------------------------

export function codeDialog() {
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

export function openCode(codes) {
  document.getElementById("code-dialog").present(codes);
}
