// The chain's input form: one field per input, the values to send, and the server's field errors.

import { $, el } from "./dom.js";
import { state } from "./state.js";

const IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"];

// Builds the fields for `chain` (keeping `previous` raw values where given); `onChange` runs on
// every edit. A `messages` input, if any, is the chat history: it gets no field.
export function buildForm(chain, previous, onChange) {
  const inputs = chain.inputs || {};
  const names = Object.keys(inputs);
  state.historyInput = names.find((name) => (inputs[name].type || "string") === "messages") || null;
  state.fields = new Map();
  const container = $("fields");
  container.replaceChildren();
  for (const name of names) {
    if (name === state.historyInput) continue;
    const field = makeField(name, inputs[name], onChange);
    state.fields.set(name, field);
    container.append(field.wrap);
    if (previous && name in previous) field.restore(previous[name]);
  }
  clearFieldErrors();
}

function makeField(name, spec, onChange) {
  const type = spec.type || "string";
  const id = `input-${name}`;
  const wrap = el("div", { class: "field", "data-field": name });
  const label = el("label", { for: id }, name);
  const hints = [type];
  if (type === "string" && spec.max_length) hints.push(`at most ${spec.max_length.toLocaleString("en")} characters`);
  if (type === "string" && spec.min_length) hints.push(`at least ${spec.min_length.toLocaleString("en")} characters`);
  if (type === "string" && spec.pattern) hints.push(`matching /${spec.pattern}/`);
  if (spec.minimum !== undefined) hints.push(`at least ${spec.minimum}`);
  if (spec.maximum !== undefined) hints.push(`at most ${spec.maximum}`);
  if (type === "messages" && spec.max_length) hints.push(`at most ${spec.max_length} messages`);
  if (spec.default !== undefined) hints.push(`default ${JSON.stringify(spec.default)}`);
  if (spec.required) {
    label.append(el("span", { class: "req", "aria-hidden": "true", title: "required" }, "*"));
  }
  label.append(el("span", { class: "type" }, hints.join(", ")));
  const help = spec.description ? el("span", { class: "help", id: `${id}-help` }, spec.description) : null;
  const error = el("p", { class: "field-error", id: `${id}-error`, hidden: true });
  const describedBy = [help ? help.id : null, error.id].filter(Boolean).join(" ");

  let control;
  let read;
  let raw;
  let restore;
  let thumb = null;
  if (type === "image") {
    // A file picker, read as a data URL (what the API takes); the thumbnail is a blob: URL,
    // which the page's CSP allows for images (data: is not).
    control = el("input", { id, name, type: "file", accept: IMAGE_TYPES.join(",") });
    thumb = el("img", { class: "thumb", alt: `${name}, as chosen`, hidden: true });
    let dataUrl;
    control.addEventListener("change", () => {
      const file = control.files && control.files[0];
      if (thumb.src) URL.revokeObjectURL(thumb.src);
      dataUrl = undefined;
      thumb.hidden = !file;
      thumb.removeAttribute("src");
      if (!file) return onChange();
      thumb.src = URL.createObjectURL(file);
      const reader = new FileReader();
      reader.addEventListener("load", () => {
        dataUrl = reader.result;
        onChange();
      });
      reader.readAsDataURL(file);
    });
    read = () => dataUrl;
    raw = () => undefined; // a browser cannot set a file picker's file: nothing to restore
    restore = () => {};
  } else if (Array.isArray(spec.enum)) {
    control = el("select", { id, name });
    if (!spec.required && spec.default === undefined) control.append(el("option", { value: "" }, "(not set)"));
    spec.enum.forEach((value, index) => control.append(el("option", { value: String(index) }, String(value))));
    const initial = spec.enum.findIndex((value) => value === spec.default);
    if (initial >= 0) control.value = String(initial);
    read = () => (control.value === "" ? undefined : spec.enum[Number(control.value)]);
    raw = () => control.value;
    restore = (value) => {
      if ([...control.options].some((option) => option.value === value)) control.value = value;
    };
  } else if (type === "integer" || type === "number") {
    control = el("input", { id, name, type: "number", step: type === "integer" ? "1" : "any" });
    if (spec.default !== undefined) control.value = String(spec.default);
    read = () => {
      const text = control.value.trim();
      if (text === "") return control.validity.badInput ? null : undefined; // null: the server names the type
      return Number(text);
    };
    raw = () => control.value;
    restore = (value) => {
      control.value = value;
    };
  } else if (type === "boolean") {
    wrap.classList.add("check");
    control = el("input", { id, name, type: "checkbox" });
    control.checked = spec.default === true;
    read = () => control.checked;
    raw = () => control.checked;
    restore = (value) => {
      control.checked = Boolean(value);
    };
  } else {
    // string, and any messages input beyond the chat history (as JSON)
    const json = type === "messages";
    control = el("textarea", {
      id,
      name,
      rows: json ? 4 : 3,
      spellcheck: json ? "false" : "true",
      class: json ? "mono" : false,
      placeholder: json ? '[{"role": "user", "content": "Hi"}]' : false,
    });
    if (spec.default !== undefined) control.value = json ? JSON.stringify(spec.default) : String(spec.default);
    read = () => {
      if (!json) return control.value;
      const text = control.value.trim();
      if (text === "") return undefined;
      try {
        return JSON.parse(text);
      } catch {
        return text; // the server says what it expects
      }
    };
    raw = () => control.value;
    restore = (value) => {
      control.value = value;
    };
  }
  if (spec.required) control.setAttribute("aria-required", "true");
  control.setAttribute("aria-describedby", describedBy);
  control.addEventListener("input", onChange);
  control.addEventListener("change", onChange);

  if (type === "boolean") {
    label.prepend(control);
    wrap.append(label);
  } else {
    wrap.append(label, control);
  }
  if (thumb) wrap.append(thumb);
  if (help) wrap.append(help);
  wrap.append(error);
  // A question box is cleared after each chat turn: free text without a default.
  const clearsAfterTurn = type === "string" && !Array.isArray(spec.enum) && spec.default === undefined;
  return { spec, control, wrap, error, read, raw, restore, clearsAfterTurn };
}

export function rawValues() {
  const values = {};
  for (const [name, field] of state.fields) values[name] = field.raw();
  return values;
}

export function collectInput() {
  const input = {};
  for (const [name, field] of state.fields) {
    const value = field.read();
    if (value !== undefined) input[name] = value;
  }
  if (state.historyInput) {
    input[state.historyInput] = state.history.map(({ role, content }) => ({ role, content }));
  }
  return input;
}

export function requestBody() {
  return { input: collectInput() };
}

export function clearFieldErrors() {
  for (const field of state.fields.values()) {
    field.error.hidden = true;
    field.error.textContent = "";
    field.control.removeAttribute("aria-invalid");
  }
  $("transcript-error").hidden = true;
  $("transcript-error").textContent = "";
}

// Marks the fields named in a 422's errors; returns the errors that name no field here.
export function markFieldErrors(errors) {
  clearFieldErrors();
  const messages = new Map();
  const unmatched = [];
  for (const error of errors || []) {
    const parts = String(error.field || "").split(".");
    const name = parts[0] === "input" ? parts[1] : undefined;
    if (name && (state.fields.has(name) || name === state.historyInput)) {
      const where = parts.slice(2).join(".");
      const text = where ? `${where}: ${error.message}` : String(error.message);
      messages.set(name, [...(messages.get(name) || []), text]);
    } else {
      unmatched.push(error);
    }
  }
  for (const [name, texts] of messages) {
    if (name === state.historyInput) {
      $("transcript-error").textContent = `${name}: ${texts.join("; ")}`;
      $("transcript-error").hidden = false;
      continue;
    }
    const field = state.fields.get(name);
    field.error.textContent = texts.join("; ");
    field.error.hidden = false;
    field.control.setAttribute("aria-invalid", "true");
  }
  return unmatched;
}
