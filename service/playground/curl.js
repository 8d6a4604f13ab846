// Copy as curl: the `curl -N` command for what is on screen. The key is never in it: with one
// set, the command reads $CHAINSERVE_API_KEY.

import { apiKey, apiUrl, chainPath } from "./api.js";
import { $ } from "./dom.js";
import { requestBody } from "./form.js";
import { setStatus } from "./run.js";
import { state } from "./state.js";

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

// A command on screen follows the form, the chain and the key.
export function refreshCurl() {
  if (!$("curl").hidden) showCurl();
}

export async function copyCurl() {
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

export function updateCurlNote() {
  $("curl-note").hidden = !apiKey();
  refreshCurl();
}
