"""The layout of a thread's checkpoint hash (`graphs/memory/redis_saver.py`) and the scripts
that write it, each after checking the turn's session lock in the same step.

Field names join their parts with NUL, which neither a namespace nor a channel holds:
`c|ns` the checkpoint, `v|ns|channel` a channel's value, `w|ns|checkpoint id|task|index` a
write. Values are LangGraph's typed serialisation (`<type>NUL<bytes>`).
"""

from __future__ import annotations

from typing import Any

SEP = "\x00"

# KEYS: the thread's hash, the session lock (or the hash again). ARGV: the lock's value ('' for
# no lock), the TTL in ms, the namespace, the new checkpoint's id and record, the count of live
# channels and their names, then field/value pairs. Values of channels no longer live and the
# writes of older checkpoints go (a newer checkpoint's writes may arrive first). Returns 0 when
# the lock is not ours.
PUT_LUA = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 0
end
local sep = '\\0'
local ns = ARGV[3]
local live = {}
local count = tonumber(ARGV[6])
for i = 1, count do
  live['v' .. sep .. ns .. sep .. ARGV[6 + i]] = true
end
local values = 'v' .. sep .. ns .. sep
local writes = 'w' .. sep .. ns .. sep
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  local stale = false
  if string.sub(field, 1, #values) == values then
    stale = not live[field]
  elseif string.sub(field, 1, #writes) == writes then
    local id = string.match(string.sub(field, #writes + 1), '^[^%z]*')
    stale = id < ARGV[4]
  end
  if stale then
    redis.call('HDEL', KEYS[1], field)
  end
end
redis.call('HSET', KEYS[1], 'c' .. sep .. ns, ARGV[5])
for i = 7 + count, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS and ARGV[1], ARGV[2] as above; then triples: 1 to overwrite (a special write, which
# replaces the one before it) or 0 to keep the first, the field, the value.
PUT_WRITES_LUA = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 0
end
for i = 3, #ARGV, 3 do
  if ARGV[i] == '1' then
    redis.call('HSET', KEYS[1], ARGV[i + 1], ARGV[i + 2])
  else
    redis.call('HSETNX', KEYS[1], ARGV[i + 1], ARGV[i + 2])
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


def field(*parts: str) -> str:
    return SEP.join(parts)


def decoded(stored: dict[Any, Any]) -> dict[str, bytes]:
    """A thread's hash as `HGETALL` returns it, with its field names as text."""
    return {bytes(name).decode(): bytes(value) for name, value in stored.items()}
