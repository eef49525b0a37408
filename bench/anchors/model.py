"""The one model every server of the benchmark uses: graphgate's offline demo model, unpaced
(in process, instant) and cut to a 20-token reply, as graphgate itself runs it with
`LLM_MODEL=demo`, `DEMO_TOKENS_PER_SECOND=0` and `MAX_OUTPUT_TOKENS=20`; paced at
`BENCH_TOKENS_PER_SECOND` when that is set (the paced streams of T3)."""

from __future__ import annotations

import os
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable

from graphs.model.demo_model import DemoChatModel

REPLY_TOKENS = 20


def instant_model() -> Runnable[Any, BaseMessage]:
    pace = float(os.environ.get("BENCH_TOKENS_PER_SECOND", "0"))
    return DemoChatModel(tokens_per_second=pace).bind(max_tokens=REPLY_TOKENS)
