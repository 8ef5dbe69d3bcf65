// Small DOM helpers: elements are built with h(), never from HTML strings (only the
// server's rendered Markdown, which escapes all markup the model writes, is set as HTML).

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  let value;
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value") value = v;
    else if (k === "checked" || k === "selected" || k === "disabled" || k === "hidden") el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  if (value !== undefined) el.value = value;
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

export function field(label, input, hint) {
  return h("label", { class: "field" }, h("span", { class: "label" }, label), input, hint ? h("span", { class: "hint" }, hint) : null);
}

export function when(seconds) {
  return new Date(seconds * 1000).toLocaleString();
}

export function ms(seconds) {
  return seconds >= 10 ? `${seconds.toFixed(1)} s` : `${Math.round(seconds * 1000)} ms`;
}

export function sleep(msec) {
  return new Promise((resolve) => setTimeout(resolve, msec));
}

// The tooltip shown over logprob tokens.
export function showTooltip(target, content) {
  const tip = document.getElementById("tooltip");
  clear(tip, content);
  tip.hidden = false;
  const box = target.getBoundingClientRect();
  tip.style.left = `${Math.max(4, box.left + window.scrollX)}px`;
  tip.style.top = `${box.bottom + window.scrollY + 4}px`;
}

export function hideTooltip() {
  document.getElementById("tooltip").hidden = true;
}
