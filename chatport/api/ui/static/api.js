// The page's only way to the server: the public API (and the UI's two helpers), with the
// key the user entered, kept in this tab's session storage and sent as a bearer token.

const KEY = "chatport.apiKey";

export const session = {
  get key() {
    return sessionStorage.getItem(KEY) || "";
  },
  set key(value) {
    if (value) sessionStorage.setItem(KEY, value);
    else sessionStorage.removeItem(KEY);
  },
};

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.param = body?.error?.param || null;
    this.code = body?.error?.code || null;
  }
}

let authNeeded = () => {};
export function onAuthNeeded(handler) {
  authNeeded = handler;
}

function headers(json) {
  const out = {};
  if (json) out["Content-Type"] = "application/json";
  if (session.key) out.Authorization = `Bearer ${session.key}`;
  return out;
}

async function failure(res) {
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = { error: { message: text || res.statusText } };
  }
  if (res.status === 401) authNeeded(body?.error?.message);
  return new ApiError(res.status, body);
}

export async function call(method, path, body, { signal } = {}) {
  const res = await fetch(path, {
    method,
    headers: headers(body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (!res.ok) throw await failure(res);
  return res.json();
}

// Server-sent events of a streamed completion, one parsed chunk at a time.
export async function* stream(path, body, signal) {
  const res = await fetch(path, { method: "POST", headers: headers(true), body: JSON.stringify(body), signal });
  if (!res.ok) throw await failure(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replaceAll("\r\n", "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trimStart())
        .join("\n");
      if (!data) continue;
      if (data === "[DONE]") return;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new ApiError(500, chunk);
      yield chunk;
    }
  }
}

// Every model name and what each served model can do (the status helper knows the latter).
export async function catalog() {
  const [models, status] = await Promise.all([call("GET", "/v1/models"), call("GET", "/ui/status")]);
  const byName = {};
  for (const model of status.models) {
    byName[model.id] = model;
    for (const alias of model.aliases) byName[alias] = model;
  }
  return { names: models.data.map((m) => m.id), byName, status };
}

// Markdown rendered by the server; while text keeps arriving, at most one render is in
// flight and the latest text wins.
export function markdownInto(el) {
  let wanted = "";
  let shown = null;
  let running = null;
  async function pump() {
    while (shown !== wanted) {
      const text = wanted;
      try {
        const { html } = await call("POST", "/ui/markdown", { text });
        el.innerHTML = html; // escaped by the server's renderer (raw HTML off)
      } catch {
        el.textContent = text;
      }
      shown = text;
    }
    running = null;
  }
  return {
    set(text) {
      wanted = text;
      // Until the first render comes back (the renderer runs at low priority and a busy
      // server runs it slowly), the text arrives as plain text.
      if (shown === null) el.textContent = text;
      // pump() awaits before it ends whenever there is something to show, so it cannot
      // clear ``running`` before this assignment.
      if (!running && shown !== wanted) running = pump();
      return running || Promise.resolve();
    },
    async settle() {
      while (running) await running;
    },
  };
}
