// The page's shell: the key dialog and the views behind the hash (#/playground,
// #/stored, #/stored/ID, #/status). Each view keeps its element: the playground's
// conversation (and a running answer) survives a visit to another page.

import { call, onAuthNeeded, session } from "./api.js";
import { h } from "./dom.js";
import * as playground from "./playground.js";
import * as status from "./status.js";
import * as stored from "./stored.js";

const views = { playground, stored, status };
const mounted = {};
let current = null;

function route() {
  const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const view = views[name] ? name : "playground";
  if (current && current !== view) mounted[current].hide?.();
  if (!mounted[view]) {
    const root = h("section", { class: `view view-${view}`, id: `view-${view}` });
    document.getElementById("views").append(root);
    mounted[view] = views[view].create(root);
  }
  for (const [key, m] of Object.entries(mounted)) m.root.hidden = key !== view;
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.view === view);
  current = view;
  mounted[view].show(rest.map(decodeURIComponent));
}

// --- the API key ---------------------------------------------------------------------

const dialog = () => document.getElementById("key-dialog");

function showKeyState() {
  document.getElementById("key-state").textContent = session.key ? "key set for this tab" : "no key";
}

function askForKey(reason) {
  const error = document.getElementById("key-error");
  error.hidden = !reason;
  error.textContent = reason || "";
  document.getElementById("key-input").value = "";
  if (!dialog().open) dialog().showModal();
}

async function saveKey(event) {
  event.preventDefault();
  const key = document.getElementById("key-input").value.trim();
  const previous = session.key;
  session.key = key;
  try {
    await call("GET", "/v1/models");
  } catch (err) {
    session.key = previous;
    const error = document.getElementById("key-error");
    error.hidden = false;
    error.textContent = err.message;
    return;
  }
  dialog().close();
  showKeyState();
  for (const m of Object.values(mounted)) m.keyChanged?.();
  route();
}

function init() {
  document.getElementById("key-form").addEventListener("submit", saveKey);
  document.getElementById("key-button").addEventListener("click", () => askForKey(""));
  document.getElementById("key-cancel").addEventListener("click", () => dialog().close());
  document.getElementById("key-forget").addEventListener("click", () => {
    session.key = "";
    showKeyState();
    dialog().close();
    for (const m of Object.values(mounted)) m.keyChanged?.();
    route();
  });
  onAuthNeeded((message) => askForKey(message));
  showKeyState();
  window.addEventListener("hashchange", route);
  route();
}

init();
