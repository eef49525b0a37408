"""The body's nesting depth is read from its bytes exactly as the parsed value nests, brackets
and escaped quotes inside strings included."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from middleware.json_body import nests_deeper

TEXT = st.text(alphabet='[]{}"\\ab', max_size=6)
VALUES = st.recursive(
    st.none() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=30,
)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


@given(VALUES, st.integers(min_value=1, max_value=8))
def test_the_bytes_tell_the_depth_of_the_value(value: Any, limit: int) -> None:
    body = json.dumps(value).encode()
    assert nests_deeper(body, limit) == (depth(value) > limit)


def test_a_batch_of_many_flat_inputs_is_shallow() -> None:
    body = ('{"inputs":[' + ",".join(["{}"] * 340_000) + "]}").encode()
    assert not nests_deeper(body, 64)
    assert nests_deeper(b"[" * 65 + b"]" * 65, 64)
