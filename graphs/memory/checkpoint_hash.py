"""The layout of a thread's checkpoint hash (`graphs/memory/redis_saver.py`) and the scripts
that write it, each after checking the turn's session lock in the same step.

Field names join their parts with NUL, which neither a namespace nor a channel holds:
`c|ns` the checkpoint, `v|ns|channel` a channel's value, `w|ns|checkpoint id|task|index` a
write. Values are `<format>NUL<bytes>`: LangGraph's typed serialisation, or a message list's
compact form (`graphs/memory/checkpoint_values.py`).

A saver that keeps older checkpoints too (`CHECKPOINT_HISTORY` above 1) adds, in the same hash:
`l|ns` the latest checkpoint's id, `k|ns|id` each kept checkpoint's channel versions (plain
text, `channel NUL version ...`, so that the script can tell which values are still used),
`h|ns|id` an older checkpoint and `o|ns|channel|version` a value that a newer checkpoint
replaced but an older one kept still uses. The latest checkpoint is stored exactly as without
history, so it is read the same way, and a hash written without history (before an upgrade) is
read as a history of one.
"""

from __future__ import annotations

from typing import Any

SEP = "\x00"

# Shared by the scripts: the turn's session lock checked first (0 when it is not ours); the live
# channels' value fields (their count at ARGV[count_at], their names after it); and, last, the
# field/value pairs after those names written, the TTL renewed.
FENCED = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 0
end
"""
LIVE_CHANNELS = """
local live = {}
local count = tonumber(ARGV[count_at])
for i = 1, count do
  live['v' .. sep .. ns .. sep .. ARGV[count_at + i]] = true
end
"""
VALUES_WRITTEN = """
for i = count_at + 1 + count, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS: the thread's hash, the session lock (or the hash again). ARGV: the lock's value ('' for
# no lock), the TTL in ms, the namespace, the new checkpoint's id and record, the count of live
# channels and their names, then field/value pairs. Values of channels no longer live and the
# writes of older checkpoints go (a newer checkpoint's writes may arrive first). Returns 0 when
# the lock is not ours.
PUT_LUA = (
    FENCED
    + """
local sep = '\\0'
local ns = ARGV[3]
local count_at = 6
"""
    + LIVE_CHANNELS
    + """
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
"""
    + VALUES_WRITTEN
)

# As PUT_LUA, keeping `ARGV[6]` checkpoints: ARGV[7] is the new checkpoint's channel versions
# (text), the live channels' count and names and the field/value pairs follow. The latest
# checkpoint becomes an older one; the values this put replaces or drops are kept under their
# version; then the oldest checkpoints beyond the bound go, with the values and writes that
# only they used.
PUT_HISTORY_LUA = (
    FENCED
    + """
local sep = '\\0'
local ns = ARGV[3]
local id = ARGV[4]
local keep = tonumber(ARGV[6])
local function split(text)
  local parts = {}
  for part in string.gmatch(text, '([^%z]*)%z?') do
    table.insert(parts, part)
  end
  return parts
end
local function versions_of(text)
  local found = {}
  local parts = split(text)
  for i = 1, #parts - 1, 2 do
    found[parts[i]] = parts[i + 1]
  end
  return found
end
local function versions_at(checkpoint_id)
  return versions_of(redis.call('HGET', KEYS[1], 'k' .. sep .. ns .. sep .. checkpoint_id) or '')
end
local count_at = 8
"""
    + LIVE_CHANNELS
    + """
local replaced = {}
for i = count_at + 1 + count, #ARGV, 2 do
  replaced[ARGV[i]] = true
end
local values = 'v' .. sep .. ns .. sep
local previous = redis.call('HGET', KEYS[1], 'l' .. sep .. ns)
if previous and previous ~= id then
  local record = redis.call('HGET', KEYS[1], 'c' .. sep .. ns)
  if record then
    redis.call('HSET', KEYS[1], 'h' .. sep .. ns .. sep .. previous, record)
  end
  local versions = versions_at(previous)
  for channel, version in pairs(versions) do
    local name = values .. channel
    if replaced[name] or not live[name] then
      local value = redis.call('HGET', KEYS[1], name)
      if value then
        redis.call('HSET', KEYS[1], 'o' .. sep .. ns .. sep .. channel .. sep .. version, value)
      end
    end
  end
end
local older = 'h' .. sep .. ns .. sep
local kept = {}
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, #older) == older then
    table.insert(kept, string.sub(field, #older + 1))
  end
end
table.sort(kept, function(a, b) return a > b end)
local oldest = id
local used = {}
for index, older_id in ipairs(kept) do
  if index < keep then
    oldest = older_id
    local versions = versions_at(older_id)
    for channel, version in pairs(versions) do
      used['o' .. sep .. ns .. sep .. channel .. sep .. version] = true
    end
  else
    redis.call('HDEL', KEYS[1], older .. older_id, 'k' .. sep .. ns .. sep .. older_id)
  end
end
local kept_values = 'o' .. sep .. ns .. sep
local writes = 'w' .. sep .. ns .. sep
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  local stale = false
  if string.sub(field, 1, #values) == values then
    stale = not live[field]
  elseif string.sub(field, 1, #kept_values) == kept_values then
    stale = not used[field]
  elseif string.sub(field, 1, #writes) == writes then
    local write_id = string.match(string.sub(field, #writes + 1), '^[^%z]*')
    stale = write_id < oldest
  end
  if stale then
    redis.call('HDEL', KEYS[1], field)
  end
end
redis.call('HSET', KEYS[1], 'c' .. sep .. ns, ARGV[5], 'l' .. sep .. ns, id)
redis.call('HSET', KEYS[1], 'k' .. sep .. ns .. sep .. id, ARGV[7])
"""
    + VALUES_WRITTEN
)

# KEYS and ARGV[1], ARGV[2] as above; then triples: 1 to overwrite (a special write, which
# replaces the one before it) or 0 to keep the first, the field, the value.
PUT_WRITES_LUA = (
    FENCED
    + """
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
)


def field(*parts: str) -> str:
    return SEP.join(parts)


def decoded(stored: dict[Any, Any]) -> dict[str, bytes]:
    """A thread's hash as `HGETALL` returns it, with its field names as text."""
    return {bytes(name).decode(): bytes(value) for name, value in stored.items()}
