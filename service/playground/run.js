// A run: POST /chains/{name}/stream, read as it arrives into the output panel with its figures
// (time to first token, latency, tokens, stop reason, run id) and errors, before or in the stream.

import { KEY_NEEDED, SseParser, apiUrl, chainPath, headers, isAbort, readJson } from "./api.js";
import { $, el, plural } from "./dom.js";
import { clearFieldErrors, markFieldErrors, requestBody } from "./form.js";
import { refreshPrompt } from "./prompt.js";
import { state } from "./state.js";

function ms(value) {
  return `${Math.round(value).toLocaleString("en")} ms`;
}

let outputText = document.createTextNode("");

export function clearRunView() {
  outputText = document.createTextNode("");
  $("output").replaceChildren(outputText);
  $("error").hidden = true;
  $("error").replaceChildren();
  for (const id of ["stat-ttft", "stat-latency", "stat-total", "stat-tokens", "stat-stop", "stat-model", "stat-run-id"]) {
    $(id).textContent = "–";
  }
}

export function setStatus(text, kind = "") {
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

// Resolves to the finished run, {chain, outcome, text, rendered} (rendered: a promise of the
// prompt the model saw), or to null when a run is already going or no chain is open.
export async function run() {
  if (state.run || !state.chain) return null;
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
  return { chain, outcome: current.outcome, text: current.text, rendered };
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
      // Two of them: the run id first; after the output, what the run cost.
      const meta = parse() || {};
      if (meta.run_id) $("stat-run-id").textContent = meta.run_id;
      if (meta.latency_ms !== undefined) $("stat-latency").textContent = ms(meta.latency_ms);
      const usage = meta.usage;
      if (usage) {
        const total = usage.total_tokens ?? usage.input_tokens + (usage.output_tokens || 0);
        // Prompt caching (cache: true): how many input tokens the cache served, when used.
        const cached = usage.cache_read_tokens !== undefined ? `, ${usage.cache_read_tokens} cached` : "";
        $("stat-tokens").textContent = `${usage.input_tokens} / ${usage.output_tokens} (${total} total${cached})`;
        $("stat-stop").textContent = meta.stop_reason || "–";
      }
      if (meta.model) {
        // The model that answered: a fallback's name says which models failed before it.
        const failed = meta.fallback_from || [];
        $("stat-model").textContent = meta.model + (failed.length ? ` (after ${failed.join(", ")})` : "");
      }
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
      if (chunk !== null && typeof chunk === "object") {
        // A structured chain: each event is the whole object so far, shown pretty as it grows.
        current.text = JSON.stringify(chunk, null, 2);
        outputText.data = current.text;
        break;
      }
      current.text += text;
      appendOutput(text);
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

export function stop() {
  if (state.run) state.run.controller.abort();
}
