// chainserve playground: plain JavaScript modules, no framework, no build step, nothing from
// elsewhere. This one starts the page: the chain list, the open chain, and the controls' wiring.

import { ApiError, KEY_NEEDED, chainPath, requestJson, restoreKey, storeKey } from "./api.js";
import { addTurn, clearChat, focusQuestion, showTranscript } from "./chat.js";
import { copyCurl, refreshCurl, updateCurlNote } from "./curl.js";
import { $, el, plural } from "./dom.js";
import { buildForm, rawValues } from "./form.js";
import { scheduleRender } from "./prompt.js";
import { clearRunView, run, setStatus, stop } from "./run.js";
import { state } from "./state.js";

let selectSeq = 0;
let keyTimer = 0;

// ---------------------------------------------------------------- chains

async function loadChains({ keepSelection = false } = {}) {
  const status = $("chains-status");
  status.textContent = "Loading…";
  let data;
  try {
    data = await requestJson("chains");
  } catch (error) {
    state.needsReload = true;
    state.chains = [];
    renderChainList();
    const message = describeLoadFailure(error);
    status.textContent = message;
    showEmpty(message);
    return;
  }
  state.needsReload = false;
  state.chains = Array.isArray(data.chains) ? data.chains : [];
  showLoadErrors(Array.isArray(data.errors) ? data.errors : []);
  renderChainList();
  status.textContent = state.chains.length ? plural(state.chains.length, "chain") : "No chains loaded.";

  const requested = keepSelection && state.chain ? state.chain.name : chainInUrl();
  const names = state.chains.map((chain) => chain.name);
  if (requested && names.includes(requested)) {
    await selectChain(requested, { preserve: keepSelection });
  } else if (requested) {
    state.chain = null;
    const more = data.errors && data.errors.length ? " Its file may be one of those with errors above." : "";
    showEmpty(`No chain named “${requested}” is being served.${more} Choose one from the list.`);
  } else if (names.length) {
    await selectChain(names[0]);
  } else {
    state.chain = null;
    showEmpty(
      data.errors && data.errors.length
        ? "No chains are being served: every chain file has errors (see above)."
        : "No chains are loaded: add a YAML file to the chains folder, then Reload.",
    );
  }
}

function describeLoadFailure(error) {
  if (error instanceof ApiError) {
    if (error.status === 401) return `API key needed. ${KEY_NEEDED}`;
    return `Could not list the chains: ${error.status} ${error.message}`;
  }
  return `Could not reach the server: ${error.message}`;
}

function chainInUrl() {
  return new URLSearchParams(location.search).get("chain");
}

function showLoadErrors(errors) {
  const box = $("load-errors");
  const list = $("load-errors-list");
  list.replaceChildren(
    ...errors.map((error) => {
      const text =
        error.text || `${error.file || "?"}:${error.line ?? "?"}: ${error.where || ""}: ${error.message || ""}`;
      return el("li", {}, text);
    }),
  );
  $("load-errors-title").textContent = `${plural(errors.length, "chain file error")}`;
  box.hidden = errors.length === 0;
}

function renderChainList() {
  const list = $("chain-list");
  list.replaceChildren(
    ...state.chains.map((chain) => {
      const link = el(
        "a",
        { href: `?chain=${encodeURIComponent(chain.name)}`, "data-chain": chain.name },
        el("strong", {}, chain.name),
        chain.description ? el("span", {}, chain.description) : null,
      );
      link.addEventListener("click", (event) => {
        if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
        event.preventDefault();
        selectChain(chain.name);
      });
      return el("li", {}, link);
    }),
  );
  markCurrentChain();
}

function markCurrentChain() {
  for (const link of $("chain-list").querySelectorAll("a")) {
    if (state.chain && link.dataset.chain === state.chain.name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function showEmpty(message) {
  $("chain-panel").hidden = true;
  $("empty-panel").hidden = false;
  $("empty-message").textContent = message;
  markCurrentChain();
}

// Choosing the chain already shown keeps what was typed (a second click, or a click that lands
// while the first load of the page is still selecting it).
async function selectChain(name, { preserve = true } = {}) {
  const seq = ++selectSeq;
  let chain;
  try {
    chain = await requestJson(chainPath(name));
  } catch (error) {
    if (seq !== selectSeq) return;
    if (error instanceof ApiError && error.status === 401) state.needsReload = true;
    state.chain = null;
    showEmpty(describeLoadFailure(error));
    return;
  }
  if (seq !== selectSeq) return;
  const sameChain = state.chain && state.chain.name === chain.name;
  const previous = preserve && sameChain ? rawValues() : null;
  if (!sameChain) {
    stop();
    state.history = [];
    clearRunView();
    setStatus("Ready.");
  }
  state.chain = chain;
  buildForm(chain, previous, onFormChange);
  showTranscript(chain.inputs || {});

  $("empty-panel").hidden = true;
  $("chain-panel").hidden = false;
  $("chain-name").textContent = chain.name;
  $("chain-description").textContent = chain.description || "";
  const model = chain.model || {};
  $("chain-model").textContent = [model.provider, model.id].filter(Boolean).join(" · ");
  document.title = `${chain.name} · chainserve playground`;
  markCurrentChain();

  const url = new URL(location.href);
  url.searchParams.set("chain", chain.name);
  history.replaceState(null, "", url);
  refreshCurl();
  scheduleRender(0);
}

// ---------------------------------------------------------------- wiring

function onFormChange() {
  scheduleRender();
  refreshCurl();
}

// A run; in chat mode, an answered turn joins the conversation.
async function runChain() {
  const done = await run();
  if (done && done.outcome === "completed" && state.historyInput && state.chain === done.chain) {
    addTurn(await done.rendered, done.text);
    onFormChange();
  }
}

function newChat() {
  stop();
  clearChat();
  clearRunView();
  setStatus("New chat.");
  onFormChange();
  focusQuestion();
}

// A new key may unlock the chain list, or change what the render says.
function useKey() {
  clearTimeout(keyTimer);
  if (state.needsReload) loadChains();
  else if (state.chain) scheduleRender(0);
}

function setUpKey() {
  restoreKey();
  $("api-key").addEventListener("input", () => {
    storeKey();
    updateCurlNote();
    clearTimeout(keyTimer);
    keyTimer = setTimeout(useKey, 400);
  });
}

function start() {
  setUpKey();
  updateCurlNote();
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault(); // Enter in the key field: use it now
    useKey();
  });
  $("inputs-form").addEventListener("submit", (event) => {
    event.preventDefault();
    runChain();
  });
  $("stop").addEventListener("click", stop);
  $("copy-curl").addEventListener("click", copyCurl);
  $("new-chat").addEventListener("click", newChat);
  $("reload").addEventListener("click", () => loadChains({ keepSelection: true }));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      runChain();
    } else if (event.key === "Escape" && state.run) {
      event.preventDefault();
      stop();
    }
  });
  clearRunView();
  loadChains();
}

start();
