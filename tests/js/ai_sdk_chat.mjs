// chainserve's /chains/{name}/chat through the Vercel AI SDK's own client code (npm `ai`).
// Run by tests/test_ai_sdk.py, one scenario per run:
//
//   echo '{"mode": "chat", "api": "http://127.0.0.1:PORT/chains/chat/chat", ...}' | node ai_sdk_chat.mjs
//
// - mode "chat": the `Chat` that useChat drives (AbstractChat, with a plain state in place of
//   React's) and its DefaultChatTransport; `steps` are sendMessage({text}, {body}) or
//   regenerate() calls. Reports the chat's messages, status and error, and each onFinish.
// - mode "transport": DefaultChatTransport.sendMessages with the given UI `messages`; reports
//   every chunk the package parsed (validated by its own schema) and the message
//   readUIMessageStream assembled from them, or what threw.
//
// stdout is one JSON object; the checks are in the Python test.
import { AbstractChat, DefaultChatTransport, readUIMessageStream } from "ai";

class PlainState {
  status = "ready";
  error = undefined;
  messages = [];
  pushMessage = (message) => {
    this.messages = this.messages.concat(message);
  };
  popMessage = () => {
    this.messages = this.messages.slice(0, -1);
  };
  replaceMessage = (index, message) => {
    this.messages = [...this.messages.slice(0, index), message, ...this.messages.slice(index + 1)];
  };
  snapshot = (value) => structuredClone(value);
}

class NodeChat extends AbstractChat {
  constructor(init) {
    super({ ...init, state: new PlainState() });
  }
}

async function chat({ api, headers, body, steps }) {
  const finishes = [];
  const errors = [];
  const transport = new DefaultChatTransport({ api, headers, body });
  const session = new NodeChat({
    transport,
    onFinish: ({ message, isError, isAbort, isDisconnect, finishReason }) =>
      finishes.push({ messageId: message.id, isError, isAbort, isDisconnect, finishReason }),
    onError: (error) => errors.push(error.message),
  });
  const statuses = [];
  for (const step of steps) {
    if (step.regenerate) await session.regenerate({ body: step.body });
    else await session.sendMessage({ text: step.send }, { body: step.body });
    statuses.push({ status: session.status, error: session.error?.message ?? null });
  }
  return { messages: session.messages, statuses, finishes, errors };
}

async function transport({ api, headers, body, messages, trigger }) {
  const chunks = [];
  let stream;
  try {
    stream = await new DefaultChatTransport({ api, headers, body }).sendMessages({
      chatId: "chat-1",
      messages,
      trigger: trigger ?? "submit-message",
      messageId: undefined,
      abortSignal: undefined,
    });
  } catch (error) {
    return { sendError: error.message };
  }
  const [raw, assembled] = stream.tee();
  const readerErrors = [];
  let message = null;
  let error = null;
  const collect = (async () => {
    for await (const chunk of raw) chunks.push(chunk);
  })().catch(() => {}); // the same failure reaches the other branch, and is reported there
  try {
    for await (const snapshot of readUIMessageStream({
      stream: assembled,
      terminateOnError: true,
      onError: (e) => readerErrors.push(e.message),
    })) {
      message = snapshot;
    }
  } catch (e) {
    error = { name: e.name, message: e.message };
  }
  await collect;
  return { chunks, message, error, readerErrors };
}

let input = "";
for await (const part of process.stdin) input += part;
const scenario = JSON.parse(input);
const run = { chat, transport }[scenario.mode];
process.stdout.write(JSON.stringify(await run(scenario)));
