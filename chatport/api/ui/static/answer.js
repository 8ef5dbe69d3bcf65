// Answers: chunks absorbed into choices as the SDKs accumulate them, the answer being
// streamed (Markdown rendered as text arrives), and a kept answer with its tokens and figures.

import { markdownInto } from "./api.js";
import { clear, h, hideTooltip, ms, showTooltip } from "./dom.js";

export function newChoice() {
  return { content: "", reasoning: "", refusal: "", tool_calls: [], audio: [], transcript: "", audio_id: null, logprobs: [], annotations: [], finish_reason: null };
}

export function hasOutput(delta) {
  return Boolean(delta && (delta.content || delta.reasoning_content || delta.refusal || delta.tool_calls || delta.audio));
}

export function absorb(acc, choice) {
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
  if (d.annotations) acc.annotations.push(...d.annotations); // a web search's citations, in one chunk
  if (choice.logprobs?.content) acc.logprobs.push(...choice.logprobs.content);
  if (choice.finish_reason) acc.finish_reason = choice.finish_reason;
}

// The answer being streamed: one block per choice, Markdown re-rendered as text arrives.
export function liveAnswer(n) {
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

export function answerView(view) {
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
        choice.annotations?.length ? sourcesView(choice.annotations) : null,
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
export function asMarkdown(text) {
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

// A web search's sources, numbered in the order the answer first cites them, each once.
export function sourcesView(annotations) {
  const seen = new Map();
  for (const a of annotations) if (a.type === "url_citation" && !seen.has(a.url_citation.url)) seen.set(a.url_citation.url, a.url_citation.title);
  const safe = [...seen].filter(([url]) => /^https?:\/\//i.test(url));
  return h(
    "ol",
    { class: "sources", "aria-label": "Sources" },
    safe.map(([url, title]) => h("li", {}, h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, title || url))),
  );
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
export function wavUrl(pieces) {
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

