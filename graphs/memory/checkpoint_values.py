"""How a checkpoint hash's values are stored (`graphs/memory/redis_saver.py`): LangGraph's typed
serialisation, `<type>NUL<bytes>`, except a channel's list of chat messages (a session's
history), which has a compact, versioned form.

LangGraph's serializer stores each message as a msgpack extension naming its class, with
every field, and builds it back through pydantic field by field: for a 40-message history,
113 µs to write and 327 µs to read, 11.3 KB, on every turn of a long session. Here a list of
plain messages is stored as `messages/1`: msgpack of `[version, [[type, fields], ...]]`, the
fields without their defaults, each message built back by its class from them: 53 and 183 µs,
6.7 KB (`make bench`'s T5 measures the long session).

The format is named in the stored value (`messages/1 NUL <bytes>`), so a value written before
it (LangGraph's `msgpack`) is still read. A list holding anything else (chunks, a team's own
message class, an artifact msgpack cannot hold) is stored as LangGraph stores it. A worker
older than this format cannot read it: a rolling upgrade from one sets
`CHECKPOINT_COMPACT_MESSAGES=false` until every worker runs this version.
"""

from __future__ import annotations

from typing import Any

import ormsgpack
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from graphs.memory.checkpoint_hash import SEP

FORMAT = "messages/1"
# Without these, msgpack would write a datetime, UUID, enum or dataclass as a string or a
# dict, and it would come back as such: with them it refuses, and the value goes to LangGraph's
# serializer, which keeps the type. (Tuples come back as lists either way.)
EXACT_TYPES_ONLY = (
    ormsgpack.OPT_PASSTHROUGH_DATETIME
    | ormsgpack.OPT_PASSTHROUGH_UUID
    | ormsgpack.OPT_PASSTHROUGH_ENUM
    | ormsgpack.OPT_PASSTHROUGH_DATACLASS
    | ormsgpack.OPT_PASSTHROUGH_SUBCLASS
    | ormsgpack.OPT_PASSTHROUGH_BIG_INT
)
_SEP = SEP.encode()

BY_TYPE: dict[str, type[BaseMessage]] = {
    cls.model_fields["type"].default: cls
    for cls in (AIMessage, HumanMessage, SystemMessage, ToolMessage, ChatMessage, FunctionMessage)
}


def packed(version: Any, value: Any) -> bytes | None:
    """A channel's `(version, value)` in this format, or None when `value` is not a list of
    plain messages whose every field msgpack holds as itself (a datetime, UUID, enum or
    dataclass inside one goes to LangGraph's serializer, which keeps its type)."""
    if not isinstance(value, list) or not value:
        return None
    rows = []
    for message in value:
        if BY_TYPE.get(getattr(message, "type", None) or "") is not type(message):
            return None
        rows.append([message.type, message.model_dump(exclude_defaults=True)])
    try:
        return ormsgpack.packb([version, rows], option=EXACT_TYPES_ONLY)
    except ormsgpack.MsgpackEncodeError:
        return None


def unpacked(data: bytes) -> tuple[Any, list[BaseMessage]]:
    """The `(version, messages)` that `packed` stored."""
    version, rows = ormsgpack.unpackb(data)
    return version, [BY_TYPE[kind](**fields) for kind, fields in rows]


class CheckpointValues:
    """The codec of one saver: `serde` (LangGraph's) for everything, message lists compact
    unless `compact` is off."""

    def __init__(self, serde: SerializerProtocol, compact: bool) -> None:
        self._serde = serde
        self._compact = compact

    def dump(self, value: Any) -> bytes:
        kind, data = self._serde.dumps_typed(value)
        return kind.encode() + _SEP + data

    def dump_channel(self, version: Any, value: Any) -> bytes:
        """A channel's value under its version."""
        compact = packed(version, value) if self._compact else None
        return self.dump((version, value)) if compact is None else FORMAT.encode() + _SEP + compact

    def load(self, stored: bytes) -> Any:
        kind, _, data = stored.partition(_SEP)
        if kind == FORMAT.encode():
            return unpacked(data)
        return self._serde.loads_typed((kind.decode(), data))
