"""What a turn counts in the usage ledgers (a principal's own, `usage.py`, and every
principal's per day, `usage_overview.py`), and the rules both keep: counts are integers and the
cost a float, in Redis as in Python."""

from __future__ import annotations

from dataclasses import dataclass

TOTAL = "total"
COST = "cost_usd"


@dataclass(frozen=True)
class LedgerEntry:
    """What one turn adds to the usage ledger."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    requests: int = 1
    cache_hits: int = 0
    partial_requests: int = 0  # turns cut short (failed, timed out, client gone)
    partial_tokens: int = 0  # their tokens, also in the totals above


COUNTERS = tuple(LedgerEntry.__dataclass_fields__)


def counter_value(counter: str, value: float) -> float:
    """Counts as integers, the cost as a float."""
    return float(value) if counter == COST else int(value)


# The same rule in the ledgers' scripts: a hash field `<name>|<counter>` grows by a float when
# its counter is the cost, else by an integer.
INCREMENT_LUA = """
local function increment(key, field, by)
  if string.sub(field, -9) == '|cost_usd' then
    redis.call('HINCRBYFLOAT', key, field, by)
  else
    redis.call('HINCRBY', key, field, by)
  end
end
"""
