"""The one model every server of the benchmark uses: graphgate's offline demo model, unpaced
(in process, instant) and cut to a 20-token reply, as graphgate itself runs it with
`LLM_MODEL=demo`, `DEMO_TOKENS_PER_SECOND=0` and `MAX_OUTPUT_TOKENS=20`. For the paced streams
of S1 the harness sets `BENCH_TOKENS_PER_SECOND` (the pace) and `BENCH_REPLY_TOKENS` (the
reply's length, 200 there), as it sets graphgate's `DEMO_TOKENS_PER_SECOND` and
`MAX_OUTPUT_TOKENS`."""

from __future__ import annotations

import os
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable

from graphs.model.demo_model import DemoChatModel

REPLY_TOKENS = int(os.environ.get("BENCH_REPLY_TOKENS", "20"))
TOKENS_PER_SECOND = float(os.environ.get("BENCH_TOKENS_PER_SECOND", "0"))


def instant_model() -> Runnable[Any, BaseMessage]:
    return DemoChatModel(tokens_per_second=TOKENS_PER_SECOND).bind(max_tokens=REPLY_TOKENS)
