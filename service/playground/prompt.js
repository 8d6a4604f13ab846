// The rendered prompt panel: what the model will receive, refreshed as the form changes.
// It asks POST /chains/{name}/render, which never calls the model.

import { ApiError, KEY_NEEDED, chainPath, isAbort, requestJson } from "./api.js";
import { $, el, messageItem, plural } from "./dom.js";
import { markFieldErrors, requestBody } from "./form.js";
import { state } from "./state.js";

const RENDER_DELAY_MS = 300;
const STAND_IN_IMAGE =
  "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR42mP4z8AAAAMBAQD3A0FDAAAAAElFTkSuQmCC";

let renderSeq = 0;
let renderTimer = 0;
let renderController = null;

export function scheduleRender(delay = RENDER_DELAY_MS) {
  if (!state.chain) return;
  clearTimeout(renderTimer);
  $("prompt-status").textContent = "updating…";
  renderTimer = setTimeout(() => {
    const { body, missing } = previewBody();
    refreshPrompt(body, { missing });
  }, delay);
}

// The server refuses an empty required string (422), but the preview runs as the user types,
// with fields still empty: it shows where each one goes instead, as a stand-in naming it
// (‹question›), and says so. A run sends the form as it is, and its 422 marks the field.
function previewBody() {
  const body = requestBody();
  const missing = [];
  for (const [name, field] of state.fields) {
    if (field.spec.type === "image" && field.spec.required && body.input[name] === undefined) {
      missing.push(name); // an image not chosen yet: a 1×1 stand-in shows where it goes
      body.input[name] = STAND_IN_IMAGE;
      continue;
    }
    if (!needsText(field.spec) || (body.input[name] ?? "") !== "") continue;
    missing.push(name);
    body.input[name] = `‹${name}›`;
  }
  return { body, missing };
}

function needsText(spec) {
  if ((spec.type || "string") !== "string" || Array.isArray(spec.enum)) return false;
  return (spec.min_length ?? (spec.required ? 1 : 0)) > 0;
}

function missingHint(missing) {
  return missing.map((name) => `‹${name}›`).join(", ") + ": fill in to run";
}

// Shows the prompt for `body`; resolves to the render (or null). A run's own render is not
// cancelled by later edits: its chat turn needs it.
export function refreshPrompt(body, { forRun = false, missing = [] } = {}) {
  clearTimeout(renderTimer);
  const chain = state.chain;
  if (!chain) return Promise.resolve(null);
  if (renderController) renderController.abort();
  const controller = new AbortController();
  if (!forRun) renderController = controller;
  const seq = ++renderSeq;
  $("prompt-status").textContent = "updating…";
  return requestJson(chainPath(chain.name, "render"), {
    method: "POST",
    body,
    signal: forRun ? undefined : controller.signal,
  }).then(
    (data) => {
      if (seq === renderSeq && state.chain === chain) {
        showPrompt(data, missing);
        if (!state.run) markFieldErrors([]);
      }
      return data;
    },
    (error) => {
      if (isAbort(error) || seq !== renderSeq || state.chain !== chain) return null;
      if (onlyAbout(error, missing)) showPromptHint(missing);
      else showPromptError(error);
      return null;
    },
  );
}

// A 422 only about fields the preview stood in for (a stand-in too short for min_length, or
// not matching a pattern) is no error of the user's yet: they have not filled them in.
function onlyAbout(error, missing) {
  if (!missing.length || !(error instanceof ApiError) || error.status !== 422) return false;
  const errors = Array.isArray(error.body.errors) ? error.body.errors : [];
  return errors.length > 0 && errors.every((item) => missing.includes(String(item.field).split(".")[1]));
}

function showPromptHint(missing) {
  $("prompt-error").hidden = true;
  $("prompt").replaceChildren();
  $("prompt-model").textContent = "";
  if (!state.run) markFieldErrors([]);
  $("prompt-status").textContent = `not rendered yet (${missingHint(missing)})`;
}

function showPrompt(data, missing = []) {
  $("prompt-error").hidden = true;
  const params = Object.entries(data.params || {})
    .map(([name, value]) => `${name} ${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(" · ");
  $("prompt-model").textContent = [data.provider, data.model, params].filter(Boolean).join(" · ");
  $("prompt").replaceChildren(...(data.messages || []).map(messageItem));
  const stand = missing.length ? ` (${missingHint(missing)})` : "";
  $("prompt-status").textContent = `${plural((data.messages || []).length, "message")}, up to date${stand}`;
}

function showPromptError(error) {
  const box = $("prompt-error");
  $("prompt").replaceChildren();
  $("prompt-model").textContent = "";
  box.replaceChildren();
  if (error instanceof ApiError) {
    if (error.status === 422 && Array.isArray(error.body.errors)) {
      if (!state.run) markFieldErrors(error.body.errors);
      box.append(
        el("strong", {}, "The prompt cannot be rendered for this input:"),
        el("ul", {}, ...error.body.errors.map((item) => el("li", {}, `${item.field}: ${item.message}`))),
      );
    } else if (error.status === 401) {
      box.append(el("strong", {}, "401: "), KEY_NEEDED);
    } else {
      box.append(el("strong", {}, `${error.status}: `), error.message);
    }
  } else {
    box.append(el("strong", {}, "Could not render: "), error.message);
  }
  box.hidden = false;
  $("prompt-status").textContent = "not rendered";
}
