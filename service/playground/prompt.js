// The rendered prompt panel: what the model will receive, refreshed as the form changes.
// It asks POST /chains/{name}/render, which never calls the model.

import { ApiError, KEY_NEEDED, chainPath, isAbort, requestJson } from "./api.js";
import { $, el, messageItem, plural } from "./dom.js";
import { markFieldErrors, requestBody } from "./form.js";
import { state } from "./state.js";

const RENDER_DELAY_MS = 300;

let renderSeq = 0;
let renderTimer = 0;
let renderController = null;

export function scheduleRender(delay = RENDER_DELAY_MS) {
  if (!state.chain) return;
  clearTimeout(renderTimer);
  $("prompt-status").textContent = "updating…";
  renderTimer = setTimeout(() => refreshPrompt(requestBody()), delay);
}

// Shows the prompt for `body`; resolves to the render (or null). A run's own render is not
// cancelled by later edits: its chat turn needs it.
export function refreshPrompt(body, { forRun = false } = {}) {
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
        showPrompt(data);
        if (!state.run) markFieldErrors([]);
      }
      return data;
    },
    (error) => {
      if (!isAbort(error) && seq === renderSeq && state.chain === chain) showPromptError(error);
      return null;
    },
  );
}

function showPrompt(data) {
  $("prompt-error").hidden = true;
  const params = Object.entries(data.params || {})
    .map(([name, value]) => `${name} ${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(" · ");
  $("prompt-model").textContent = [data.provider, data.model, params].filter(Boolean).join(" · ");
  $("prompt").replaceChildren(...(data.messages || []).map(messageItem));
  $("prompt-status").textContent = `${plural((data.messages || []).length, "message")}, up to date`;
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
