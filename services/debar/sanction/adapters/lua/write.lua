#!lua flags=allow-cross-slot-keys
-- Stores records (restrictions, exemptions), replaces or removes subjects' index entries, and sequences the
-- writes' log entries, many per call (the bulk import; a single registry write is one call too).
-- KEYS: one key of this node (declared keys must share a slot on Redis Cluster; the others are reached through
-- the allow-cross-slot-keys flag on this node, callers group operations by node).
-- ARGV[1]: a msgpack array {records, entries, logs, batches, token}: records flat, 5 per record (hash key, field,
-- record, the stored record it replaces: its bytes as read, "" for none, and the key of a claim on it, lua/claim.lua,
-- "" on one server, where there are none: with the write's token, the claim it holds; without, one another write
-- spanning nodes may hold, which this write, on one node, must not write past); entries flat, 4 per operation (index hash key, pseudonym, entry key prefix, new entry or "" to remove
-- it), applied in order (lib/entries.lua); logs flat, 4 per log entry (the bucket's log stream, its history hash,
-- the record's id, the entry as adapters/codec.py packs it), each appended as one record of the stream (field
-- `r`) and its stream id added to the record's history; batches (many writes of one call, an import's chunk):
-- per batch the stream, the packed entries (field `rs`, one record for all of them), their count N, then N
-- triples (history hash, record id, the history token's tail "/<index>/<bucket>"), each record's history getting
-- "<stream id>/<index>/<bucket>". Packed without bin types (the script's cmsgpack predates them). One argument
-- rather than thousands keeps the client's packing cheap. token: the write's claim token ("" for none); ceiling:
-- the longest life of a claim debar makes (lib/claims.lua), in ms.
-- Returns the number of index entries that changed; an error "STALE <field>", with nothing written, where a stored
-- record is not the one its write replaces (another write came between the read and this one: compare-and-set), or
-- the write's claim on it lapsed, or (a write of one call) another write holds a claim on it.
local ops = cmsgpack.unpack(ARGV[1])
local records, entries, logs, batches, token = ops[1], ops[2], ops[3] or {}, ops[4] or {}, ops[5] or ''
local ceiling = tonumber(ops[6])
if not ceiling then return redis.error_reply('ERR write: no claim ceiling (ops[6])') end  -- 0 would disregard every claim
for i = 1, #records, 5 do
  local claim = records[i + 4]
  local held = claim ~= '' and redis.call('GET', claim)
  if (redis.call('HGET', records[i], records[i + 1]) or '') ~= records[i + 3]
      or (token ~= '' and held ~= token) or (token == '' and held and claim_held(claim, ceiling)) then
    return redis.error_reply('STALE ' .. records[i + 1])
  end
end
for i = 1, #records, 5 do
  redis.call('HSET', records[i], records[i + 1], records[i + 2])
  if token ~= '' then
    redis.call('DEL', records[i + 4])
  end
end
local changed = 0
for i = 1, #entries, 4 do
  changed = changed + entries_put(entries[i], entries[i + 1], entries[i + 2], entries[i + 3])
end
local function remember(history, target, token)
  if redis.call('HSETNX', history, target, token) == 0 then -- a record written before: one call for a new one
    redis.call('HSET', history, target, redis.call('HGET', history, target) .. ' ' .. token)
  end
end
for i = 1, #logs, 4 do
  remember(logs[i + 1], logs[i + 2], redis.call('XADD', logs[i], '*', 'r', logs[i + 3]))
end
local i = 1
while i <= #batches do
  local stream_id = redis.call('XADD', batches[i], '*', 'rs', batches[i + 1])
  local n = batches[i + 2]
  for j = i + 3, i + 2 + 3 * n, 3 do
    remember(batches[j], batches[j + 1], stream_id .. batches[j + 2])
  end
  i = i + 3 + 3 * n
end
return changed
