-- Writes one objection step atomically: the record (compare-and-set on its previous JSON), the state index, the
-- count of open objections disputing each restriction, and the transition's entry in the objection log (a
-- sequencing stream of the Merkle log). Every key shares one hash tag, so one call is one slot.
--
-- KEYS: records hash, decision -> objection hash, from-state index, to-state index, dispute counts, log.
-- ARGV: mode ("file" | "move" | "update"), objection id, decision id, expected record JSON (move, update),
--       new record JSON, index score (listing order), dispute delta (-1, 0, 1), from state, to state, actor, reason, at,
--       the entry's signature by the service (tlog/entry_signature.py; kept as field s, "" for none), then the
--       restriction ids.
-- Returns {1, new JSON, cleared restriction ids...} when written; {0, current JSON} when the decision already has an
-- objection (file) or the record changed meanwhile (move, update); {-1} when there is no such objection.
local mode, oid, did, expected, record = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local score, delta = ARGV[6], tonumber(ARGV[7])
local from_state, to_state, actor, reason, at = ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12]
local signature = ARGV[13]

if mode == 'file' then
  local existing = redis.call('HGET', KEYS[2], did)
  if existing then
    return {0, redis.call('HGET', KEYS[1], existing) or ''}
  end
  redis.call('HSET', KEYS[2], did, oid)
else
  local current = redis.call('HGET', KEYS[1], oid)
  if not current then return {-1} end
  if current ~= expected then return {0, current} end
end
redis.call('HSET', KEYS[1], oid, record)
if mode == 'update' then  -- same state; its place in the index may change (nothing left due once corrected)
  redis.call('ZADD', KEYS[4], score, oid)
  return {1, record}
end

redis.call('ZREM', KEYS[3], oid)
redis.call('ZADD', KEYS[4], score, oid)

local result = {1, record}
if delta ~= 0 then
  for i = 14, #ARGV do
    local count = redis.call('HINCRBY', KEYS[5], ARGV[i], delta)
    if count <= 0 then
      redis.call('HDEL', KEYS[5], ARGV[i])
      result[#result + 1] = ARGV[i]
    end
  end
end

redis.call('XADD', KEYS[6], '*', 'o', oid, 'd', did, 'f', from_state, 't', to_state, 'a', actor, 'r', reason,
  'at', at, 's', signature)
return result
