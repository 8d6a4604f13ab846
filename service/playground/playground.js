// chainserve playground: plain JavaScript, no framework, no build step, nothing from elsewhere.
// Every data call goes to this origin and carries the API key typed into the page (if any).

const $ = (id) => document.getElementById(id);

const KEY_STORAGE = "chainserve.apiKey"; // sessionStorage only: never localStorage, never the URL
const RENDER_DELAY_MS = 300;

const state = {
  chains: [], // summaries from GET /chains
  chain: null, // the open chain: GET /chains/{name}
  fields: new Map(), // input name → {spec, control, wrap, error, read, raw, restore}
  historyInput: null, // chat mode: the messages input that carries the conversation
  history: [], // chat mode: [{role, content}]
  run: null, // the run in progress
  needsReload: false, // the chains could not be fetched (no key, server down): retry on key change
};

let selectSeq = 0;
let renderSeq = 0;
let renderTimer = 0;
let renderController = null;
let keyTimer = 0;

// ---------------------------------------------------------------- small helpers

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === undefined || value === null) continue;
    if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function apiUrl(path) {
  // Relative to the page, so the playground also works behind a path prefix.
  return new URL(path, document.baseURI);
}

function chainPath(name, action = "") {
  return `chains/${encodeURIComponent(name)}${action ? `/${action}` : ""}`;
}

function apiKey() {
  return $("api-key").value.trim();
}

function headers(extra = {}) {
  const all = { ...extra };
  const key = apiKey();
  if (key) all["x-api-key"] = key;
  return all;
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.body = body || {};
  }
}

async function readJson(response) {
  const text = await response.text();
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    return { message: text.slice(0, 500) };
  }
}

async function requestJson(path, { method = "GET", body, signal } = {}) {
  const init = { method, signal, headers: headers({ Accept: "application/json" }) };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(apiUrl(path), init);
  const data = await readJson(response);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function isAbort(error) {
  return error && error.name === "AbortError";
}

function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

function ms(value) {
  return `${Math.round(value).toLocaleString("en")} ms`;
}

const KEY_NEEDED =
  "This server needs an API key: enter yours in the API key field at the top (it is sent as x-api-key).";

// ---------------------------------------------------------------- API key

function setUpKey() {
  const input = $("api-key");
  try {
    input.value = sessionStorage.getItem(KEY_STORAGE) || "";
  } catch {
    // storage disabled: the key lives in the field only
  }
  input.addEventListener("input", () => {
    const key = apiKey();
    try {
      if (key) sessionStorage.setItem(KEY_STORAGE, key);
      else sessionStorage.removeItem(KEY_STORAGE);
    } catch {
      // as above
    }
    updateCurlNote();
    clearTimeout(keyTimer);
    keyTimer = setTimeout(() => {
      if (state.needsReload) loadChains();
      else if (state.chain) scheduleRender(0);
    }, 400);
  });
}

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

async function selectChain(name, { preserve = false } = {}) {
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
  buildForm(chain, previous);

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
  if ($("curl").hidden === false) showCurl();
  scheduleRender(0);
}

// ---------------------------------------------------------------- the form

function buildForm(chain, previous) {
  const inputs = chain.inputs || {};
  const names = Object.keys(inputs);
  state.historyInput = names.find((name) => (inputs[name].type || "string") === "messages") || null;
  state.fields = new Map();
  const container = $("fields");
  container.replaceChildren();
  for (const name of names) {
    if (name === state.historyInput) continue;
    const field = makeField(name, inputs[name]);
    state.fields.set(name, field);
    container.append(field.wrap);
    if (previous && name in previous) field.restore(previous[name]);
  }
  const chat = state.historyInput !== null;
  $("transcript-box").hidden = !chat;
  if (chat) {
    const spec = inputs[state.historyInput];
    const limit = spec.max_length ? ` (at most ${spec.max_length} messages)` : "";
    $("transcript-help").textContent =
      `Chat mode: the conversation is sent as “${state.historyInput}”${limit}; each answered turn is added to it.`;
  }
  renderTranscript();
  clearFieldErrors();
}

function makeField(name, spec) {
  const type = spec.type || "string";
  const id = `input-${name}`;
  const wrap = el("div", { class: "field", "data-field": name });
  const label = el("label", { for: id }, name);
  const hints = [type];
  if (type === "string" && spec.max_length) hints.push(`at most ${spec.max_length.toLocaleString("en")} characters`);
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
  if (Array.isArray(spec.enum)) {
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
  control.addEventListener("input", onFormChange);
  control.addEventListener("change", onFormChange);

  if (type === "boolean") {
    label.prepend(control);
    wrap.append(label);
  } else {
    wrap.append(label, control);
  }
  if (help) wrap.append(help);
  wrap.append(error);
  // A question box is cleared after each chat turn: free text without a default.
  const clearsAfterTurn = type === "string" && !Array.isArray(spec.enum) && spec.default === undefined;
  return { spec, control, wrap, error, read, raw, restore, clearsAfterTurn };
}

function rawValues() {
  const values = {};
  for (const [name, field] of state.fields) values[name] = field.raw();
  return values;
}

function collectInput() {
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

function requestBody() {
  return { input: collectInput() };
}

function onFormChange() {
  scheduleRender();
  if (!$("curl").hidden) showCurl();
}

function clearFieldErrors() {
  for (const field of state.fields.values()) {
    field.error.hidden = true;
    field.error.textContent = "";
    field.control.removeAttribute("aria-invalid");
  }
  $("transcript-error").hidden = true;
  $("transcript-error").textContent = "";
}

// Marks the fields named in a 422's errors; returns the errors that name no field here.
function markFieldErrors(errors) {
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

// ---------------------------------------------------------------- chat transcript

function renderTranscript() {
  const list = $("transcript");
  list.replaceChildren(...state.history.map(messageItem));
  list.scrollTop = list.scrollHeight; // the latest turn in view
  $("transcript-empty").hidden = state.history.length > 0;
}

function messageItem(message) {
  return el(
    "li",
    { class: "msg", "data-role": message.role },
    el("span", { class: "role" }, message.role),
    el("pre", {}, String(message.content)),
  );
}

function newChat() {
  stop();
  state.history = [];
  renderTranscript();
  clearRunView();
  setStatus("New chat.");
  onFormChange();
  const first = [...state.fields.values()].find((field) => field.clearsAfterTurn);
  if (first) first.control.focus();
}

// ---------------------------------------------------------------- rendered prompt

function scheduleRender(delay = RENDER_DELAY_MS) {
  if (!state.chain) return;
  clearTimeout(renderTimer);
  $("prompt-status").textContent = "updating…";
  renderTimer = setTimeout(() => refreshPrompt(requestBody()), delay);
}

// Shows the prompt for `body`; resolves to the render (or null). A run's own render is not
// cancelled by later edits: its chat turn needs it.
function refreshPrompt(body, { forRun = false } = {}) {
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

// ---------------------------------------------------------------- a run

let outputText = document.createTextNode("");

function clearRunView() {
  outputText = document.createTextNode("");
  $("output").replaceChildren(outputText);
  $("error").hidden = true;
  $("error").replaceChildren();
  for (const id of ["stat-ttft", "stat-latency", "stat-total", "stat-tokens", "stat-stop", "stat-run-id"]) {
    $(id).textContent = "–";
  }
}

function setStatus(text, kind = "") {
  const status = $("status");
  status.textContent = text;
  status.className = `status ${kind}`.trim();
}

function setRunning(running) {
  $("run").disabled = running;
  $("stop").disabled = !running;
  $("output").setAttribute("aria-busy", running ? "true" : "false");
}

function appendOutput(text) {
  const box = $("output");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 24;
  outputText.appendData(text);
  if (atBottom) box.scrollTop = box.scrollHeight;
}

function showError(status, body, { inBand = false, chunks = 0 } = {}) {
  const box = $("error");
  box.className = "error";
  const code = body.code ? ` ${body.code}` : "";
  const message = body.message || "(no message)";
  const listed = status === 422 && Array.isArray(body.errors) && body.errors.length > 0;
  // A 422's message repeats its field errors: list them once, below.
  box.replaceChildren(el("strong", {}, `${status}${code}`), listed ? "" : `: ${message}`);
  if (inBand) {
    box.append(el("span", { class: "request-id" }, `in-band error event after ${plural(chunks, "chunk")}`));
  }
  if (status === 401) box.append(el("p", {}, KEY_NEEDED));
  const unmatched = status === 422 ? markFieldErrors(body.errors) : body.errors || [];
  if (listed) {
    box.append(el("ul", {}, ...body.errors.map((item) => el("li", {}, `${item.field}: ${item.message}`))));
  } else if (unmatched.length) {
    box.append(el("ul", {}, ...unmatched.map((item) => el("li", {}, `${item.field}: ${item.message}`))));
  }
  if (body.request_id) box.append(el("span", { class: "request-id" }, `request id ${body.request_id}`));
  box.hidden = false;
  setStatus(`Failed: ${status}${code}${inBand ? ` after ${plural(chunks, "chunk")}` : ""}.`, "failed");
}

async function run() {
  if (state.run || !state.chain) return;
  const chain = state.chain;
  const body = requestBody();
  const controller = new AbortController();
  const current = { controller, chunks: 0, text: "", started: performance.now(), firstAt: null, outcome: null };
  state.run = current;
  clearRunView();
  clearFieldErrors();
  setRunning(true);
  setStatus("Running…", "running");
  const rendered = refreshPrompt(body, { forRun: true });

  try {
    const response = await fetch(apiUrl(chainPath(chain.name, "stream")), {
      method: "POST",
      headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    if (!response.ok) {
      showError(response.status, await readJson(response));
      current.outcome = "failed";
    } else {
      $("stat-run-id").textContent = response.headers.get("X-Run-Id") || "–";
      await consume(response, current);
    }
  } catch (error) {
    if (isAbort(error)) {
      current.outcome = "stopped";
    } else {
      current.outcome = "failed";
      showError("network", { message: `${error.message} (is the server running?)` });
    }
  }
  const total = performance.now() - current.started;
  $("stat-total").textContent = ms(total);
  state.run = null;
  setRunning(false);

  if (current.outcome === "completed") {
    setStatus(`Done: ${plural(current.chunks, "chunk")} in ${ms(total)}.`);
    if (state.historyInput && state.chain === chain) await finishTurn(current, body, await rendered);
  } else if (current.outcome === "stopped") {
    setStatus(`Stopped by you after ${plural(current.chunks, "chunk")}: the server stops the model.`);
    const box = $("error");
    box.className = "error stopped";
    box.replaceChildren(el("strong", {}, "Stopped"), `: the output above is partial (${plural(current.chunks, "chunk")}).`);
    box.hidden = false;
  } else if (current.outcome === "truncated") {
    showError("incomplete", {
      message: "the stream ended without an end event: the output may be cut short.",
    });
  }
}

async function consume(response, current) {
  const reader = response.body.getReader();
  const parser = new SseParser((event, data) => onEvent(event, data, current));
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parser.push(value);
    if (current.outcome) break; // end or error seen
  }
  parser.finish();
  if (!current.outcome) current.outcome = "truncated";
  reader.cancel().catch(() => {});
}

function onEvent(event, data, current) {
  if (current.outcome) return;
  const parse = () => {
    try {
      return data === "" ? null : JSON.parse(data);
    } catch {
      return data;
    }
  };
  switch (event) {
    case "metadata": {
      const meta = parse() || {};
      if (meta.run_id) $("stat-run-id").textContent = meta.run_id;
      break;
    }
    case "data": {
      const chunk = parse();
      const text = typeof chunk === "string" ? chunk : JSON.stringify(chunk);
      if (current.firstAt === null) {
        current.firstAt = performance.now();
        $("stat-ttft").textContent = ms(current.firstAt - current.started);
        setStatus("Streaming…", "running");
      }
      current.chunks += 1;
      current.text += text;
      appendOutput(text);
      break;
    }
    case "usage": {
      const usage = parse() || {};
      if (usage.latency_ms !== undefined) $("stat-latency").textContent = ms(usage.latency_ms);
      if (usage.input_tokens !== undefined) {
        const total = usage.total_tokens ?? usage.input_tokens + (usage.output_tokens || 0);
        $("stat-tokens").textContent = `${usage.input_tokens} / ${usage.output_tokens} (${total} total)`;
      }
      $("stat-stop").textContent = usage.stop_reason || "–";
      break;
    }
    case "end":
      current.outcome = "completed";
      break;
    case "error": {
      const error = parse() || {};
      current.outcome = "failed";
      showError(error.status_code || "error", { message: error.message }, { inBand: true, chunks: current.chunks });
      break;
    }
    default:
      break;
  }
}

async function finishTurn(current, body, rendered) {
  // The user message the model saw for this turn: the last one of the rendered prompt.
  const users = ((rendered && rendered.messages) || []).filter((message) => message.role === "user");
  const clearing = [...state.fields.values()].filter((field) => field.clearsAfterTurn);
  const fallback = clearing.map((field) => field.control.value).join("\n");
  const user = users.length ? users[users.length - 1].content : fallback;
  state.history.push({ role: "user", content: user }, { role: "assistant", content: current.text });
  renderTranscript();
  for (const field of clearing) field.control.value = "";
  if (clearing.length) clearing[0].control.focus();
  onFormChange();
}

function stop() {
  if (state.run) state.run.controller.abort();
}

// Server-Sent Events, parsed incrementally as bytes arrive (per the HTML standard's rules).
class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.decoder = new TextDecoder();
    this.buffer = "";
    this.event = "";
    this.data = [];
  }

  push(bytes) {
    this.buffer += this.decoder.decode(bytes, { stream: true });
    this.lines();
  }

  finish() {
    this.buffer += this.decoder.decode();
    this.lines(true);
  }

  lines(final = false) {
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A lone \r at the very end may be the first half of \r\n: wait for more.
      if (!final && match[0] === "\r" && match.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      this.line(line);
    }
  }

  line(line) {
    if (line === "") {
      if (this.data.length) this.onEvent(this.event || "message", this.data.join("\n"));
      this.event = "";
      this.data = [];
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
  }
}

// ---------------------------------------------------------------- copy as curl

function shellQuote(text) {
  return `'${String(text).replace(/'/g, "'\\''")}'`;
}

function curlCommand() {
  const url = apiUrl(chainPath(state.chain.name, "stream")).href;
  const lines = [`curl -N ${shellQuote(url)}`, `-H ${shellQuote("Content-Type: application/json")}`];
  if (apiKey()) lines.push('-H "x-api-key: $CHAINSERVE_API_KEY"');
  lines.push(`-d ${shellQuote(JSON.stringify(requestBody()))}`);
  return lines.join(" \\\n  ");
}

function showCurl() {
  if (!state.chain) return "";
  const command = curlCommand();
  $("curl").textContent = command;
  $("curl").hidden = false;
  return command;
}

async function copyCurl() {
  const command = showCurl();
  if (!command) return;
  let copied = false;
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(command);
      copied = true;
    }
  } catch {
    copied = false;
  }
  setStatus(copied ? "curl command copied." : "Select the curl command below to copy it.");
}

function updateCurlNote() {
  $("curl-note").hidden = !apiKey();
  if (!$("curl").hidden && state.chain) showCurl();
}

// ---------------------------------------------------------------- wiring

function start() {
  setUpKey();
  updateCurlNote();
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault(); // Enter in the key field: use it now
    clearTimeout(keyTimer);
    if (state.needsReload) loadChains();
    else if (state.chain) scheduleRender(0);
  });
  $("inputs-form").addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });
  $("stop").addEventListener("click", stop);
  $("copy-curl").addEventListener("click", copyCurl);
  $("new-chat").addEventListener("click", newChat);
  $("reload").addEventListener("click", () => loadChains({ keepSelection: true }));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      run();
    } else if (event.key === "Escape" && state.run) {
      event.preventDefault();
      stop();
    }
  });
  clearRunView();
  loadChains();
}

start();
