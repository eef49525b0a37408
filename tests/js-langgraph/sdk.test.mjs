// The LangGraph JavaScript client against a running graphgate serving the example agent.
// tests/clients/test_langgraph_js_client.py starts the servers and sets GRAPHGATE_URL,
// GRAPHGATE_API_KEY, MARKER (the double answers ANSWER after one tool call) and SLOW_MARKER
// (the same, at two tokens a second).
import assert from "node:assert/strict";
import { test } from "node:test";
import { Client } from "@langchain/langgraph-sdk";

const client = new Client({
  apiUrl: process.env.GRAPHGATE_URL,
  apiKey: process.env.GRAPHGATE_API_KEY,
});
const marker = process.env.MARKER;
const answer = process.env.ANSWER;
const ask = (m) => ({ messages: [{ role: "user", content: `When may I retry? ${m}` }] });
const types = (values) => values.messages.map((m) => m.type);

test("a streamed run carries values, updates and the answer token by token", async () => {
  const [assistant] = await client.assistants.search({ graphId: "agent" });
  assert.equal(assistant.assistant_id, "agent");
  const thread = await client.threads.create({ metadata: { js: marker } });
  const events = [];
  for await (const part of client.runs.stream(thread.thread_id, "agent", {
    input: ask(marker),
    streamMode: ["values", "updates", "messages-tuple"],
  })) {
    events.push(part);
  }
  assert.equal(events[0].event, "metadata");
  const tokens = events
    .filter((e) => e.event === "messages" && e.data[0].type === "AIMessageChunk")
    .map((e) => e.data[0].content)
    .filter((c) => c);
  assert.equal(tokens.join(""), answer);
  assert.equal(tokens.length, answer.split(" ").length);
  assert.ok(events.some((e) => e.event === "updates" && "tools" in e.data));
  const values = events.filter((e) => e.event === "values").at(-1).data;
  assert.deepEqual(types(values), ["human", "ai", "tool", "ai"]);
  assert.match(values.messages[2].content, /^limits: .*Retry-After/);
});

test("wait, the thread's state and a search by metadata", async () => {
  const thread = await client.threads.create({ metadata: { search: marker } });
  const values = await client.runs.wait(thread.thread_id, "agent", { input: ask(marker) });
  assert.equal(values.messages.at(-1).content, answer);
  const state = await client.threads.getState(thread.thread_id);
  assert.deepEqual(types(state.values), ["human", "ai", "tool", "ai"]);
  const found = await client.threads.search({ metadata: { search: marker } });
  assert.deepEqual(
    found.map((t) => t.thread_id),
    [thread.thread_id],
  );
  assert.equal(found[0].metadata.graph_id, "agent");
});

test("a stateless run answers and keeps nothing", async () => {
  const values = await client.runs.wait(null, "agent", { input: ask(marker) });
  assert.deepEqual(types(values), ["human", "ai", "tool", "ai"]);
});

test("cancel stops a running run", async () => {
  const slow = process.env.SLOW_MARKER;
  const thread = await client.threads.create();
  let runId;
  for await (const part of client.runs.stream(thread.thread_id, "agent", {
    input: ask(slow),
    streamMode: "messages-tuple",
  })) {
    if (part.event === "metadata") runId = part.data.run_id;
    if (part.event === "messages" && part.data[0].type === "AIMessageChunk" && part.data[0].content) {
      await client.runs.cancel(thread.thread_id, runId);
    }
  }
  assert.equal((await client.runs.get(thread.thread_id, runId)).status, "interrupted");
});

const decisions = [
  [{ type: "approve" }, "limits: "],
  [{ type: "edit", edited_action: { name: "search_docs", args: { term: "session" } } }, "sessions: "],
  [{ type: "reject", message: "Not now." }, "Not now."],
];

for (const [decision, toolSays] of decisions) {
  test(`the reviewed agent stops for review and resumes with ${decision.type}`, async () => {
    const thread = await client.threads.create();
    await client.runs.wait(thread.thread_id, "reviewed_agent", { input: ask(marker) });
    const stopped = await client.threads.get(thread.thread_id);
    assert.equal(stopped.status, "interrupted");
    const state = await client.threads.getState(thread.thread_id);
    assert.equal(state.tasks[0].interrupts[0].value.action_requests[0].name, "search_docs");
    const values = await client.runs.wait(thread.thread_id, "reviewed_agent", {
      command: { resume: { decisions: [decision] } },
    });
    assert.deepEqual(types(values), ["human", "ai", "tool", "ai"]);
    assert.ok(values.messages[2].content.startsWith(toolSays), values.messages[2].content);
    if (decision.type === "edit") {
      assert.deepEqual(values.messages[1].tool_calls[0].args, { term: "session" });
    }
    assert.equal(values.messages.at(-1).content, answer);
    assert.equal((await client.threads.get(thread.thread_id)).status, "idle");
  });
}

test("a deleted thread is gone", async () => {
  const thread = await client.threads.create();
  await client.threads.delete(thread.thread_id);
  await assert.rejects(client.threads.get(thread.thread_id), /404|not found/i);
});
