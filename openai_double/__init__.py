"""An OpenAI-compatible upstream for tests, benchmarks and demos: real HTTP, injectable faults.

Serves `/v1/chat/completions` (plain, and streaming with a final usage chunk), `/v1/embeddings`
and `/v1/models`. Controls, per request, chosen by a substring of the prompt (and optionally the
model): `POST /control/behaviors` with

    {"match": "marker", "model": "gpt-x", "statuses": [429, 429], "retry_after": 1,
     "tokens": 20, "tokens_per_second": 20, "latency_ms": 0, "hang": false,
     "drop_after": null, "malformed": false, "reply": null}

`statuses` are answered one per matching request, then 200. `drop_after` cuts the connection
(a stream after that many tokens, a whole reply half-way through its body); `malformed` sends a
chunk that is not JSON mid-stream, or half a whole reply's body. `GET /control/stats?match=marker`
reports the requests whose prompt contains the marker: `requests`, `in_flight`,
`peak_in_flight`, `completed`, `cancelled`, their `bodies` and the `usage` each was answered
with. `GET /control/wait?match=marker&counter=cancelled&value=1&timeout=2` long-polls until a
counter reaches a value (408 on timeout). Run it with `python -m openai_double --port 8001`.
"""
