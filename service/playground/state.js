// What the page knows, shared by its modules: one object, imported where it is needed.

export const state = {
  chains: [], // summaries from GET /chains
  chain: null, // the open chain: GET /chains/{name}
  fields: new Map(), // input name → {spec, control, wrap, error, read, raw, restore, clearsAfterTurn}
  historyInput: null, // chat mode: the messages input that carries the conversation
  history: [], // chat mode: [{role, content}]
  run: null, // the run in progress
  needsReload: false, // the chains could not be fetched (no key, server down): retry on key change
};
