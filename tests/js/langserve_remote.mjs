// chainserve's LangServe routes through LangChain.js's own client: RemoteRunnable from the
// real @langchain/core package. Run by tests/test_langserve_js.py:
//
//   node tests/js/langserve_remote.mjs CHAINSERVE_URL EMULATOR_URL API_KEY
//
// Each case makes real client calls, as an app would (the API key in RemoteRunnable's
// `options.headers`, nothing else set), and reports what the client returned or threw; faults
// are queued through the emulator's control endpoint just before the call they hit. stdout is
// one JSON object {case: observation}; the checks are in the Python test.
import { AIMessage, HumanMessage } from "@langchain/core/messages";
import { RemoteRunnable } from "@langchain/core/runnables/remote";
import { RunLog, RunLogPatch } from "@langchain/core/tracers/log_stream";

const [server, emulator, apiKey] = process.argv.slice(2);
const headers = { "x-api-key": apiKey };
const remote = (chain, extra = {}) =>
  new RemoteRunnable({
    url: `${server}/chains/${chain}`,
    options: { headers: { ...headers, ...extra } },
  });
const summarize = remote("summarize");
// The same client asking for SSE on /stream explicitly (see the stream cases in the test).
const summarizeSse = remote("summarize", { Accept: "text/event-stream" });
const chat = remote("chat");
const text = { text: "Cats sleep." };

async function fault(kind, extra = {}) {
  const response = await fetch(`${emulator}/_emulator/faults`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ kind, ...extra }),
  });
  if (!response.ok) throw new Error(`faults: ${response.status} ${await response.text()}`);
}

// A LangChain object as plain JSON: its class and its text (messages, prompt values).
function shape(value) {
  if (value?.constructor?.name?.endsWith("Message") || value?.constructor?.name?.endsWith("Chunk"))
    return { class: value.constructor.name, type: value._getType?.(), text: value.text };
  if (value?.constructor?.name === "ChatPromptValue")
    return { class: "ChatPromptValue", messages: value.messages.map(shape) };
  if (Array.isArray(value)) return value.map(shape);
  return value;
}

function copy(value) {
  if (Array.isArray(value)) return value.map(copy);
  if (value && Object.getPrototypeOf(value) === Object.prototype)
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, copy(item)]));
  return value;
}

async function collect(iterable, into = []) {
  for await (const item of iterable) into.push(item);
  return into;
}

// What a call returned, or what it threw (and, for streams, what came before it threw).
async function observe(call) {
  const received = [];
  try {
    return { value: await call(received) };
  } catch (error) {
    return { error: { name: error.name, message: error.message }, received };
  }
}

const cases = {
  invoke: () => summarize.invoke(text),
  batch: () => summarize.batch([{ text: "one" }, { text: "two", sentences: 1 }]),
  stream: async (into) => collect(await summarize.stream(text), into),
  streamSse: async (into) => collect(await summarizeSse.stream(text), into),
  streamLog: async () => {
    // The client keeps its own running state, and it is the first patch's value object: it
    // applies each later patch to it in place after yielding that patch. So each patch's ops
    // are copied as they arrive (plain objects and arrays; LangChain objects are leaves no op
    // changes), and the RunLog built from the copies, as an app would build one.
    const patches = [];
    for await (const patch of summarize.streamLog(text))
      patches.push(new RunLogPatch({ ops: copy(patch.ops) }));
    let log = RunLog.fromRunLogPatch(patches[0]);
    for (const patch of patches.slice(1)) log = log.concat(patch);
    const { state } = log;
    const logs = Object.fromEntries(
      Object.entries(state.logs).map(([name, entry]) => [
        name,
        { type: entry.type, streamed_output: shape(entry.streamed_output) },
      ]),
    );
    return {
      patches: patches.length,
      logClass: log.constructor.name,
      final_output: state.final_output,
      streamed_output: state.streamed_output,
      logs,
    };
  },
  streamEvents: async () => {
    const events = await collect(summarize.streamEvents(text, { version: "v2" }));
    return events.map(({ event, name, data }) => ({
      event,
      name,
      chunk: shape(data?.chunk),
      input: event === "on_chat_model_start" ? shape(data.input?.messages) : undefined,
      output: event === "on_chain_end" ? data.output : undefined,
    }));
  },
  chatMessages: () =>
    chat.invoke({
      history: [new HumanMessage("My name is Ada."), new AIMessage("Hello Ada!")],
      question: "Who am I?",
    }),
  badInput: () => summarize.invoke({ nope: "x" }),
  noKey: () => new RemoteRunnable({ url: `${server}/chains/summarize` }).invoke(text),
  throttledInvoke: async () => {
    await fault("throttle");
    return summarize.invoke(text);
  },
  throttledStream: async (into) => {
    await fault("throttle");
    return collect(await summarize.stream(text), into);
  },
  throttledStreamEvents: async (into) => {
    await fault("throttle");
    return collect(summarize.streamEvents(text, { version: "v2" }), into);
  },
  brokenStream: async (into) => {
    await fault("stream_error", { after_chunks: 2 });
    return collect(await summarizeSse.stream(text), into);
  },
  brokenStreamEvents: async (into) => {
    await fault("stream_error", { after_chunks: 2 });
    const events = await collect(summarize.streamEvents(text, { version: "v2" }), into);
    return events.map(({ event }) => event);
  },
};

const results = {};
for (const [name, call] of Object.entries(cases)) {
  const observed = await observe(call);
  if (observed.received) observed.received = observed.received.map((item) => item.event ?? item);
  results[name] = observed;
}
process.stdout.write(JSON.stringify(results));
