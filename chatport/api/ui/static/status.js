// The status page: each served model's settings and its engine's live figures, read once a
// second from /ui/status. Tokens/s and time to first token are the differences between two
// readings (the engine keeps running totals, as Prometheus counters do).

import { call } from "./api.js";
import { clear, h, ms } from "./dom.js";

const PERIOD_MS = 1000;
const HISTORY = 60;

export function create(root) {
  const server = h("div", { class: "server-facts" });
  const cards = h("div", { class: "model-cards" });
  const error = h("p", { class: "error", hidden: true });
  root.append(h("h1", {}, "Status"), server, error, cards);
  let timer = null;
  let last = null;
  const history = {}; // model id -> recent tokens/s readings

  async function poll() {
    let status;
    try {
      status = await call("GET", "/ui/status");
    } catch (err) {
      error.hidden = false;
      error.textContent = err.message;
      return;
    }
    error.hidden = true;
    clear(
      server,
      fact("API keys", status.keys_required ? "required" : "not required"),
      fact("stored completions", status.stored_completions ? "on" : "off"),
      fact("state", status.draining ? "draining" : "serving"),
    );
    const before = last ? Object.fromEntries(last.models.map((m) => [m.id, m])) : {};
    clear(cards, status.models.map((model) => card(model, before[model.id], last ? status.time - last.time : 0)));
    last = status;
  }

  function card(model, before, seconds) {
    let tps = null;
    let ttft = null;
    if (before && seconds > 0) {
      tps = (model.tokens - before.tokens) / seconds;
      const firsts = model.first_tokens - before.first_tokens;
      if (firsts > 0) ttft = (model.first_token_seconds - before.first_token_seconds) / firsts;
    }
    const series = (history[model.id] ||= { tps: [], ttft: null });
    if (tps !== null) series.tps = [...series.tps, tps].slice(-HISTORY);
    if (ttft !== null) series.ttft = ttft;
    const settings = [
      ["context", `${model.context_length} tokens`],
      ["slots", model.slots],
      ["aliases", model.aliases.join(", ") || "none"],
      ["images", model.vision ? "yes" : "no"],
      ["audio in / out", `${model.audio_input ? "yes" : "no"} / ${model.audio_output ? "yes" : "no"}`],
      ["tool calls", model.tool_format],
      ["reasoning", model.reasoning ? "yes" : "no"],
      ["fingerprint", model.fingerprint],
    ];
    return h(
      "div",
      { class: "model-card", dataset: { model: model.id } },
      h("h2", {}, model.id, model.alive ? null : h("span", { class: "badge danger" }, "engine stopped")),
      h(
        "div",
        { class: "figures" },
        figure("running", model.running, "sequences holding a slot"),
        figure("waiting", model.waiting, "requests queued for a slot"),
        figure("tps", tps === null ? "–" : tps.toFixed(1), "tokens/s (last second)"),
        figure("ttft", series.ttft === null ? "–" : ms(series.ttft), "time to first token (recent)"),
        figure("generated", model.tokens, "tokens generated"),
      ),
      sparkline(series.tps),
      model.replicas.length ? replicaTable(model.replicas) : null,
      h("table", { class: "settings-table" }, settings.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, String(v))))),
    );
  }

  return {
    root,
    show() {
      if (timer === null) {
        poll();
        timer = setInterval(poll, PERIOD_MS);
      }
    },
    hide() {
      clearInterval(timer);
      timer = null;
      last = null;
    },
  };
}

function fact(name, value) {
  return h("span", { class: "fact" }, h("span", { class: "muted" }, `${name}: `), value);
}

function figure(name, value, label) {
  return h("div", { class: `figure ${name}` }, h("div", { class: "value" }, String(value)), h("div", { class: "label muted" }, label));
}

function sparkline(values) {
  const canvas = h("canvas", { class: "sparkline", width: 600, height: 60, "aria-label": "tokens/s over the last minute" });
  const ctx = canvas.getContext("2d");
  const top = Math.max(1, ...values);
  ctx.strokeStyle = "#2563eb";
  ctx.lineWidth = 2;
  ctx.beginPath();
  values.forEach((v, i) => {
    const x = (i / (HISTORY - 1)) * canvas.width;
    const y = canvas.height - 4 - (v / top) * (canvas.height - 8);
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  ctx.stroke();
  ctx.fillStyle = "#6b7280";
  ctx.font = "11px sans-serif";
  ctx.fillText(`max ${top.toFixed(0)} tok/s`, 4, 12);
  return canvas;
}

// Engines as Ray Serve replicas (chatport serve --ray): one row each.
function replicaTable(replicas) {
  return h(
    "table",
    { class: "list replicas" },
    h("thead", {}, h("tr", {}, ["replica", "state", "running", "waiting", "requests", "tokens", "pid"].map((t) => h("th", {}, t)))),
    h(
      "tbody",
      {},
      replicas.map((r) =>
        h(
          "tr",
          { class: "replica", dataset: { replica: r.name } },
          h("td", {}, h("code", {}, r.name)),
          h("td", {}, r.alive ? "up" : h("span", { class: "error" }, "down")),
          [r.running, r.waiting, r.requests, r.tokens, r.pid].map((v) => h("td", { class: "num" }, String(v))),
        ),
      ),
    ),
  );
}
