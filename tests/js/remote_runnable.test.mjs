// LangServe's JavaScript RemoteRunnable against a running graphgate, as a JS user would use it.
// tests/clients/test_js_client.py starts the servers and sets GRAPHGATE_URL, GRAPHGATE_USER, MARKER.
import assert from "node:assert/strict";
import { test } from "node:test";
import { RemoteRunnable } from "@langchain/core/runnables/remote";

const url = `${process.env.GRAPHGATE_URL}/chat/`;
const marker = process.env.MARKER;
const chat = new RemoteRunnable({
  url,
  options: { headers: { "X-User-Id": process.env.GRAPHGATE_USER }, timeout: 30000 },
});

test("invoke returns the AI message", async () => {
  const reply = await chat.invoke({ question: `hello ${marker}` });
  assert.equal(reply.content, `Echo: hello ${marker}`);
});

test("stream delivers the reply token by token", async () => {
  const tokens = [];
  for await (const chunk of await chat.stream({ question: `stream ${marker}` })) {
    if (chunk.content) tokens.push(chunk.content);
  }
  assert.ok(tokens.length >= 10, `only ${tokens.length} chunks`);
  assert.equal(tokens.join(""), Array.from({ length: 20 }, (_, i) => `w${i + 1}`).join(" "));
});

test("batch answers each input in order", async () => {
  const replies = await chat.batch([0, 1, 2].map((i) => ({ question: `b${i} ${marker}` })));
  assert.deepEqual(
    replies.map((r) => r.content),
    [0, 1, 2].map((i) => `Echo: b${i} ${marker}`),
  );
});

test("a session remembers the first turn", async () => {
  const session = chat.withConfig({ configurable: { session_id: `js-${marker}` } });
  await session.invoke({ question: `my name is Ada ${marker}` });
  await session.invoke({ question: `what is my name ${marker}` });
  const res = await fetch(`${process.env.GRAPHGATE_URL}/chat/sessions/js-${marker}`, {
    headers: { "X-User-Id": process.env.GRAPHGATE_USER },
  });
  const history = (await res.json()).messages.map((m) => m.content);
  assert.deepEqual(history, [
    `my name is Ada ${marker}`,
    `Echo: my name is Ada ${marker}`,
    `what is my name ${marker}`,
    `Echo: what is my name ${marker}`,
  ]);
});
