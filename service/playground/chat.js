// Chat mode: the conversation so far, shown above the form and sent as the chain's messages input.

import { $, messageItem } from "./dom.js";
import { state } from "./state.js";

// Shows the transcript when the open chain has a history input (buildForm finds it).
export function showTranscript(inputs) {
  const chat = state.historyInput !== null;
  $("transcript-box").hidden = !chat;
  if (chat) {
    const spec = inputs[state.historyInput];
    const limit = spec.max_length ? ` (at most ${spec.max_length} messages)` : "";
    $("transcript-help").textContent =
      `Chat mode: the conversation is sent as “${state.historyInput}”${limit}; each answered turn is added to it.`;
  }
  renderTranscript();
}

export function renderTranscript() {
  const list = $("transcript");
  list.replaceChildren(...state.history.map(messageItem));
  list.scrollTop = list.scrollHeight; // the latest turn in view
  $("transcript-empty").hidden = state.history.length > 0;
}

// The question boxes: emptied after each turn, ready for the next one.
function questionFields() {
  return [...state.fields.values()].filter((field) => field.clearsAfterTurn);
}

export function addTurn(rendered, answer) {
  // The user message the model saw for this turn: the last one of the rendered prompt.
  const users = ((rendered && rendered.messages) || []).filter((message) => message.role === "user");
  const clearing = questionFields();
  const fallback = clearing.map((field) => field.control.value).join("\n");
  const user = users.length ? users[users.length - 1].content : fallback;
  state.history.push({ role: "user", content: user }, { role: "assistant", content: answer });
  renderTranscript();
  for (const field of clearing) field.control.value = "";
  if (clearing.length) clearing[0].control.focus();
}

export function clearChat() {
  state.history = [];
  renderTranscript();
}

export function focusQuestion() {
  const [first] = questionFields();
  if (first) first.control.focus();
}
