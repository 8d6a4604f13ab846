// Small helpers for building the page: no framework, plain DOM.

export const $ = (id) => document.getElementById(id);

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === undefined || value === null) continue;
    if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

// One message of a conversation or a rendered prompt.
export function messageItem(message) {
  return el(
    "li",
    { class: "msg", "data-role": message.role },
    el("span", { class: "role" }, message.role),
    el("pre", {}, String(message.content)),
  );
}

export function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}
