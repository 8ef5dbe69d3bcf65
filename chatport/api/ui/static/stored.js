// Stored completions: the list (newest first, filtered by model and metadata, paged with
// the API's cursor) and one completion's page (its messages, answer, usage and metadata,
// which can be edited, and deletion). Only the public API is used, with the tab's key:
// what a key's project cannot read, this page cannot show.

import { sourcesView } from "./answer.js";
import { call, markdownInto } from "./api.js";
import { clear, field, h, when } from "./dom.js";

const PAGE = 20;

export function create(root) {
  const list = listView();
  const detail = detailView();
  root.append(list.el, detail.el);
  return {
    root,
    show([id]) {
      list.el.hidden = Boolean(id);
      detail.el.hidden = !id;
      if (id) detail.load(id);
      else list.load();
    },
    keyChanged() {
      list.reset();
    },
  };
}

function listView() {
  const model = h("select", { id: "filter-model" }, h("option", { value: "" }, "any model"));
  const filters = h("div", { id: "metadata-filters", class: "filters" });
  const addFilter = h("button", { type: "button", class: "small", id: "add-filter" }, "+ metadata filter");
  const apply = h("button", { type: "submit", class: "primary", id: "apply-filters" }, "Apply");
  const body = h("tbody");
  const table = h(
    "table",
    { id: "stored-table", class: "list" },
    h("thead", {}, h("tr", {}, ["Created", "Id", "Model", "Answer", "Metadata", "Tokens"].map((t) => h("th", {}, t)))),
    body,
  );
  const empty = h("p", { class: "empty muted", hidden: true }, "No stored completions. Send a request with store: true (the playground's \"store\" box) and it shows here.");
  const error = h("p", { class: "error", hidden: true });
  const newer = h("button", { type: "button", id: "newer" }, "← Newer");
  const older = h("button", { type: "button", id: "older" }, "Older →");
  const pageInfo = h("span", { class: "muted", id: "page-info" });
  let cursors = [null]; // the cursor of each page shown so far; the last is this page's
  const form = h(
    "form",
    { class: "row wrap filter-form", onsubmit: (e) => { e.preventDefault(); cursors = [null]; load(); } },
    field("Model", model),
    filters,
    addFilter,
    apply,
  );
  const el = h("div", { class: "stored-list" }, h("h1", {}, "Stored completions"), form, error, table, empty, h("div", { class: "row" }, newer, pageInfo, older));
  let modelsKnown = false;

  function filterRow(key = "", value = "") {
    const filter = h(
      "div",
      { class: "filter-row" },
      h("input", { class: "meta-key", placeholder: "metadata key", value: key, "aria-label": "Metadata key" }),
      h("span", {}, "="),
      h("input", { class: "meta-value", placeholder: "value", value, "aria-label": "Metadata value" }),
      h("button", { type: "button", class: "icon", title: "Remove filter", onclick: () => filter.remove() }, "×"),
    );
    return filter;
  }
  filters.append(filterRow());
  addFilter.addEventListener("click", () => filters.append(filterRow()));

  function query() {
    const q = new URLSearchParams({ limit: String(PAGE), order: "desc" });
    if (model.value) q.set("model", model.value);
    for (const filter of filters.querySelectorAll(".filter-row")) {
      const key = filter.querySelector(".meta-key").value.trim();
      if (key) q.set(`metadata[${key}]`, filter.querySelector(".meta-value").value);
    }
    const after = cursors.at(-1);
    if (after) q.set("after", after);
    return q;
  }

  async function loadModels() {
    if (modelsKnown) return;
    try {
      const models = await call("GET", "/v1/models");
      const chosen = model.value;
      clear(model, h("option", { value: "" }, "any model"), models.data.map((m) => h("option", { value: m.id, selected: m.id === chosen }, m.id)));
      modelsKnown = true;
    } catch {
      // the list below reports the problem
    }
  }

  async function load() {
    loadModels();
    error.hidden = true;
    let page;
    try {
      page = await call("GET", `/v1/chat/completions?${query()}`);
    } catch (err) {
      error.hidden = false;
      error.textContent = err.param ? `${err.param}: ${err.message}` : err.message;
      clear(body);
      return;
    }
    clear(body, page.data.map(row));
    empty.hidden = page.data.length > 0;
    newer.disabled = cursors.length <= 1;
    older.disabled = !page.has_more;
    older.onclick = () => {
      cursors.push(page.last_id);
      load();
    };
    newer.onclick = () => {
      cursors.pop();
      load();
    };
    pageInfo.textContent = page.data.length ? `page ${cursors.length}` : "";
  }

  function row(completion) {
    const open = () => (location.hash = `#/stored/${encodeURIComponent(completion.id)}`);
    return h(
      "tr",
      { class: "completion", dataset: { id: completion.id }, tabindex: "0", onclick: open, onkeydown: (e) => e.key === "Enter" && open() },
      h("td", { class: "nowrap" }, when(completion.created)),
      h("td", {}, h("code", {}, completion.id)),
      h("td", {}, completion.model),
      h("td", { class: "preview" }, preview(completion)),
      h("td", {}, Object.entries(completion.metadata || {}).map(([k, v]) => h("span", { class: "chip" }, `${k}=${v}`))),
      h("td", { class: "num" }, completion.usage ? String(completion.usage.total_tokens) : ""),
    );
  }

  return {
    el,
    load,
    reset() {
      cursors = [null];
      modelsKnown = false;
    },
  };
}

function preview(completion) {
  const text = completion.choices?.[0]?.message?.content || "";
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

function detailView() {
  const el = h("div", { class: "stored-detail" });

  async function load(id) {
    clear(el, h("p", { class: "muted" }, "Loading…"));
    let completion;
    let messages;
    try {
      [completion, messages] = await Promise.all([call("GET", `/v1/chat/completions/${encodeURIComponent(id)}`), allMessages(id)]);
    } catch (err) {
      clear(el, h("a", { href: "#/stored" }, "← Stored completions"), h("p", { class: "error" }, err.message));
      return;
    }
    render(completion, messages);
  }

  function render(completion, messages) {
    const answer = completion.choices?.[0]?.message || {};
    const md = h("div", { class: "md" });
    markdownInto(md).set(answer.content || answer.refusal || "");
    clear(
      el,
      h("a", { href: "#/stored" }, "← Stored completions"),
      h("h1", {}, h("code", {}, completion.id)),
      h("p", { class: "muted" }, `${completion.model} · ${when(completion.created)}`),
      h("h2", {}, "Request messages"),
      h("div", { class: "stored-messages" }, messages.map(messageBlock)),
      h("h2", {}, "Answer"),
      h(
        "div",
        { class: "msg assistant stored-answer" },
        md,
        answer.tool_calls ? answer.tool_calls.map((c) => h("div", { class: "tool-call" }, h("strong", {}, c.function.name), h("pre", {}, c.function.arguments))) : null,
        answer.annotations?.length ? sourcesView(answer.annotations) : null,
        h("div", { class: "muted" }, `finish_reason: ${completion.choices?.[0]?.finish_reason ?? ""}`),
      ),
      h("h2", {}, "Usage"),
      usageTable(completion.usage),
      h("h2", {}, "Metadata"),
      metadataEditor(completion),
      h("h2", {}, "Delete"),
      deleteButton(completion),
    );
  }

  return { el, load };
}

async function allMessages(id) {
  const out = [];
  let after = null;
  for (;;) {
    const q = new URLSearchParams({ limit: "100" });
    if (after) q.set("after", after);
    const page = await call("GET", `/v1/chat/completions/${encodeURIComponent(id)}/messages?${q}`);
    out.push(...page.data);
    if (!page.has_more) return out;
    after = page.last_id;
  }
}

function messageBlock(message) {
  const parts = message.content_parts || null;
  const text = typeof message.content === "string" ? message.content : "";
  return h(
    "div",
    { class: `msg ${message.role} stored-message`, dataset: { role: message.role } },
    h("div", { class: "msg-head" }, h("span", { class: "role-label" }, message.role), message.name ? h("span", { class: "muted" }, ` (${message.name})`) : null),
    h("div", { class: "pre" }, text),
    parts ? parts.filter((p) => p.type !== "text").map((p) => h("span", { class: "chip" }, p.type)) : null,
  );
}

function usageTable(usage) {
  if (!usage) return h("p", { class: "muted" }, "none");
  const rows = [
    ["prompt tokens", usage.prompt_tokens],
    ["cached tokens", usage.prompt_tokens_details?.cached_tokens ?? 0],
    ["completion tokens", usage.completion_tokens],
    ["reasoning tokens", usage.completion_tokens_details?.reasoning_tokens ?? 0],
    ["total tokens", usage.total_tokens],
  ];
  return h("table", { class: "usage" }, rows.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", { class: "num" }, String(v)))));
}

function metadataEditor(completion) {
  const rows = h("div", { class: "meta-rows" });
  const status = h("span", { class: "muted", id: "meta-status", role: "status" });
  const addRow = (key = "", value = "") => {
    const row = h(
      "div",
      { class: "meta-row" },
      h("input", { class: "meta-key", value: key, placeholder: "key", maxlength: "64", "aria-label": "Key" }),
      h("input", { class: "meta-value", value, placeholder: "value", maxlength: "512", "aria-label": "Value" }),
      h("button", { type: "button", class: "icon", title: "Remove", onclick: () => row.remove() }, "×"),
    );
    rows.append(row);
  };
  for (const [k, v] of Object.entries(completion.metadata || {})) addRow(k, v);
  const save = async () => {
    const metadata = {};
    for (const row of rows.querySelectorAll(".meta-row")) {
      const key = row.querySelector(".meta-key").value.trim();
      if (key) metadata[key] = row.querySelector(".meta-value").value;
    }
    status.textContent = "saving…";
    try {
      const updated = await call("POST", `/v1/chat/completions/${encodeURIComponent(completion.id)}`, { metadata });
      completion.metadata = updated.metadata;
      status.textContent = "saved";
    } catch (err) {
      status.textContent = err.param ? `${err.param}: ${err.message}` : err.message;
      status.className = "error";
    }
  };
  return h(
    "div",
    { class: "metadata-editor" },
    rows,
    h("div", { class: "row" }, h("button", { type: "button", id: "meta-add", onclick: () => addRow() }, "+ Add"), h("button", { type: "button", id: "meta-save", class: "primary", onclick: save }, "Save metadata"), status),
  );
}

function deleteButton(completion) {
  const error = h("p", { class: "error", hidden: true });
  const yes = h("button", { type: "button", id: "confirm-delete", class: "danger" }, "Delete");
  const no = h("button", { type: "button", id: "cancel-delete" }, "Cancel");
  const dialog = h("dialog", { id: "delete-dialog" }, h("h2", {}, "Delete this stored completion?"), h("p", {}, h("code", {}, completion.id), " and its messages are deleted for good."), error, h("div", { class: "row end" }, no, yes));
  no.addEventListener("click", () => dialog.close());
  yes.addEventListener("click", async () => {
    try {
      await call("DELETE", `/v1/chat/completions/${encodeURIComponent(completion.id)}`);
    } catch (err) {
      error.hidden = false;
      error.textContent = err.message;
      return;
    }
    dialog.close();
    location.hash = "#/stored";
  });
  return h("div", {}, h("button", { type: "button", id: "delete", class: "danger", onclick: () => dialog.showModal() }, "Delete…"), dialog);
}
