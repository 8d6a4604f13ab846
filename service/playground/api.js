// Talking to the server: URLs, the API key, JSON requests and their errors, and SSE parsing.
// Every data call goes to this origin and carries the API key typed into the page (if any).

import { $ } from "./dom.js";

const KEY_STORAGE = "chainserve.apiKey"; // sessionStorage only: never localStorage, never the URL

export const KEY_NEEDED =
  "This server needs an API key: enter yours in the API key field at the top (it is sent as x-api-key).";

export function apiUrl(path) {
  // Relative to the page, so the playground also works behind a path prefix.
  return new URL(path, document.baseURI);
}

export function chainPath(name, action = "") {
  return `chains/${encodeURIComponent(name)}${action ? `/${action}` : ""}`;
}

export function apiKey() {
  return $("api-key").value.trim();
}

export function restoreKey() {
  try {
    $("api-key").value = sessionStorage.getItem(KEY_STORAGE) || "";
  } catch {
    // storage disabled: the key lives in the field only
  }
}

export function storeKey() {
  const key = apiKey();
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // as above
  }
}

export function headers(extra = {}) {
  const all = { ...extra };
  const key = apiKey();
  if (key) all["x-api-key"] = key;
  return all;
}

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.body = body || {};
  }
}

export async function readJson(response) {
  const text = await response.text();
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    return { message: text.slice(0, 500) };
  }
}

export async function requestJson(path, { method = "GET", body, signal } = {}) {
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

export function isAbort(error) {
  return error && error.name === "AbortError";
}

// Server-Sent Events, parsed incrementally as bytes arrive (per the HTML standard's rules).
export class SseParser {
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
