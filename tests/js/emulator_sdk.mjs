// The Bedrock emulator through the AWS SDK for JavaScript v3's default Bedrock Runtime client
// (HTTP/2, NodeHttp2Handler). Run by tests/test_emulator_js.py:
//
//   node tests/js/emulator_sdk.mjs ENDPOINT MODEL
//
// Each case makes real SDK calls (faults queued through the emulator's control endpoint first)
// and reports what the SDK returned or threw; stdout is one JSON object {case: observation}
// that the Python test checks.
import {
  BedrockRuntimeClient,
  ConverseCommand,
  ConverseStreamCommand,
  InvokeModelCommand,
  InvokeModelWithResponseStreamCommand,
} from "@aws-sdk/client-bedrock-runtime";

const [endpoint, modelId] = process.argv.slice(2);
// Only the endpoint, a region and dummy credentials: everything else is the SDK's default.
const client = new BedrockRuntimeClient({
  endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "emulator", secretAccessKey: "emulator" },
});

const messages = [{ role: "user", content: [{ text: "hello from node" }] }];
const anthropicBody = (extra = {}) =>
  JSON.stringify({
    anthropic_version: "bedrock-2023-05-31",
    max_tokens: 100,
    messages: [{ role: "user", content: [{ type: "text", text: "hello from node" }] }],
    ...extra,
  });

async function control(path, body, method = "POST") {
  const response = await fetch(`${endpoint}/_emulator/${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
}

function failure(error) {
  return {
    name: error.name,
    fault: error.$fault,
    message: error.message,
    status: error.$metadata?.httpStatusCode,
    attempts: error.$metadata?.attempts,
    requestId: error.$metadata?.requestId,
    originalStatusCode: error.originalStatusCode,
    originalMessage: error.originalMessage,
  };
}

// The events of a stream, as the SDK gives them: [eventName, payload], then its error if any.
async function drain(stream) {
  const events = [];
  try {
    for await (const event of stream) {
      const [name] = Object.keys(event);
      let payload = event[name];
      if (name === "chunk") payload = JSON.parse(new TextDecoder().decode(payload.bytes));
      events.push([name, payload]);
    }
    return { events };
  } catch (error) {
    return { events, error: failure(error) };
  }
}

const cases = {
  async converse() {
    const out = await client.send(new ConverseCommand({ modelId, messages }));
    return {
      status: out.$metadata.httpStatusCode,
      requestId: out.$metadata.requestId,
      text: out.output.message.content[0].text,
      stopReason: out.stopReason,
      usage: out.usage,
    };
  },
  async converseStream() {
    const out = await client.send(
      new ConverseStreamCommand({ modelId, messages, inferenceConfig: { maxTokens: 5 } }),
    );
    return { status: out.$metadata.httpStatusCode, requestId: out.$metadata.requestId, ...(await drain(out.stream)) };
  },
  async invokeModel() {
    const out = await client.send(
      new InvokeModelCommand({ modelId, body: anthropicBody(), contentType: "application/json" }),
    );
    return {
      status: out.$metadata.httpStatusCode,
      requestId: out.$metadata.requestId,
      contentType: out.contentType,
      body: JSON.parse(new TextDecoder().decode(out.body)),
    };
  },
  async invokeModelWithResponseStream() {
    const out = await client.send(
      new InvokeModelWithResponseStreamCommand({ modelId, body: anthropicBody() }),
    );
    return { status: out.$metadata.httpStatusCode, contentType: out.contentType, ...(await drain(out.body)) };
  },
  async pacedStreams() {
    // Paced like a model: the SDK closes its HTTP/2 session (GOAWAY) once the headers are in,
    // and must still get every event after.
    await control("pace", { ttft_ms: 100, tokens_per_second: 100 }, "PUT");
    try {
      const converse = await client.send(new ConverseStreamCommand({ modelId, messages }));
      const invoke = await client.send(
        new InvokeModelWithResponseStreamCommand({ modelId, body: anthropicBody() }),
      );
      return { converse: await drain(converse.stream), invoke: await drain(invoke.body) };
    } finally {
      await control("pace", { ttft_ms: 0, tokens_per_second: 0 }, "PUT");
    }
  },
  async toolUse() {
    const toolConfig = {
      tools: [
        {
          toolSpec: {
            name: "get_weather",
            inputSchema: {
              json: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
            },
          },
        },
      ],
    };
    const paris = [{ role: "user", content: [{ text: "Paris" }] }];
    const whole = await client.send(new ConverseCommand({ modelId, messages: paris, toolConfig }));
    const streamed = await client.send(
      new ConverseStreamCommand({ modelId, messages: paris, toolConfig }),
    );
    return {
      stopReason: whole.stopReason,
      content: whole.output.message.content,
      ...(await drain(streamed.stream)),
    };
  },
  async throttled() {
    // The SDK retries throttling (3 attempts by default): every attempt is throttled.
    await control("faults", { kind: "throttle", times: 3 });
    try {
      await client.send(new ConverseCommand({ modelId, messages }));
      return { error: null };
    } catch (error) {
      return { error: failure(error) };
    }
  },
  async invalidRequest() {
    try {
      await client.send(new InvokeModelCommand({ modelId, body: JSON.stringify({ prompt: "hi" }) }));
      return { error: null };
    } catch (error) {
      return { error: failure(error) };
    }
  },
  async converseStreamError() {
    await control("faults", { kind: "stream_error", after_chunks: 2 });
    const out = await client.send(new ConverseStreamCommand({ modelId, messages }));
    return drain(out.stream);
  },
  async invokeStreamError() {
    await control("faults", { kind: "stream_error", after_chunks: 2 });
    const out = await client.send(
      new InvokeModelWithResponseStreamCommand({ modelId, body: anthropicBody() }),
    );
    return drain(out.body);
  },
  async invokeStreamModelTimeout() {
    await control("faults", { kind: "stream_model_timeout", after_chunks: 1 });
    const out = await client.send(
      new InvokeModelWithResponseStreamCommand({ modelId, body: anthropicBody() }),
    );
    return drain(out.body);
  },
  async notFound() {
    await control("faults", { kind: "not_found" });
    try {
      await client.send(new ConverseStreamCommand({ modelId, messages }));
      return { error: null };
    } catch (error) {
      return { error: failure(error) };
    }
  },
  async streamThrottle() {
    await control("faults", { kind: "stream_throttle", after_chunks: 1 });
    const out = await client.send(new ConverseStreamCommand({ modelId, messages }));
    return drain(out.stream);
  },
};

const only = process.argv.slice(4);
const results = {};
for (const [name, run] of Object.entries(cases)) {
  if (only.length && !only.includes(name)) continue;
  try {
    results[name] = await run();
  } catch (error) {
    results[name] = { unexpected: failure(error), stack: String(error.stack) };
  }
}
client.destroy();
process.stdout.write(JSON.stringify(results, null, 1) + "\n");
