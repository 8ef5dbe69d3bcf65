// The conversation being written: one box per message, tool results under their calls,
// kept answers shown as they were streamed, and files attached to user messages.

import { answerView } from "./answer.js";
import { clear, h } from "./dom.js";
import { findCall } from "./request.js";

// The messages as elements. ``actions``: render() after a change, run() on Ctrl+Enter,
// model() the chosen model's capabilities (which attachments it takes).
export function renderMessages(el, messages, actions) {
  clear(el, messages.map((msg, i) => messageView(messages, msg, i, actions)));
}

function messageView(messages, msg, i, actions) {
  const { render } = actions;
  const remove = h("button", { type: "button", class: "icon remove", title: "Remove", onclick: () => { messages.splice(i, 1); render(); } }, "×");
  if (msg.role === "tool") {
    const call = findCall(messages, msg.tool_call_id);
    return h(
      "div",
      { class: "msg tool", dataset: { role: "tool" } },
      h("div", { class: "msg-head" }, h("span", { class: "role-label" }, `Result of ${call?.function.name || "tool"}`), h("code", { class: "muted" }, msg.tool_call_id), h("span", { class: "spacer" }), remove),
      contentBox(msg, "The tool's result (text or JSON)", actions),
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
  const head = h("div", { class: "msg-head" }, role, h("span", { class: "spacer" }), msg.role === "user" ? attachButton(msg, actions) : null, remove);
  return h(
    "div",
    { class: `msg ${msg.role}`, dataset: { role: msg.role } },
    head,
    contentBox(msg, msg.role === "user" ? "Write a message (Ctrl+Enter runs)" : "", actions),
    msg._attachments?.length ? attachmentList(msg, actions) : null,
  );
}

function contentBox(msg, placeholder, { run }) {
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

function attachButton(msg, { model, render }) {
  const chosen = model();
  const accept = ["application/pdf", "text/plain", "text/markdown", ".md", ".txt", ".pdf"];
  if (chosen?.vision) accept.push("image/png", "image/jpeg", "image/webp", "image/gif");
  if (chosen?.audio_input) accept.push("audio/wav", "audio/mpeg", ".wav", ".mp3");
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

function attachmentList(msg, { render }) {
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

