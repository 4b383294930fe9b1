#!lua flags=allow-cross-slot-keys
-- Replays spooled (fail-open) decisions into the decision log as one record, idempotently: a decision already
-- replayed (its spool id is in its bucket's replayed set) is skipped, so a replay interrupted by a crash or a
-- timeout can simply run again.
--
-- KEYS: log stream, log head, then 3 per item: subject's decision list, bucket's replayed set, bucket's map from
--       spool id to decision id.
-- ARGV: catalogue version, chain bucket, then 8 per item: spool id, decided at (ms), caller, revision, id type,
--       pseudonym, measure, at.
-- Returns the number of decisions appended.
local US, GS, FS = '\31', '\29', '\28'
local catalogue_version, chain_bucket = ARGV[1], ARGV[2]
local items = (#ARGV - 2) / 8

local stream_id, prev = chain_next(KEYS[2])

local records, spooled = {}, {}
for i = 0, items - 1 do
  local k, a = 2 + i * 3, 2 + i * 8
  local spool_id = ARGV[a + 1]
  if redis.call('SADD', KEYS[k + 2], spool_id) == 1 then
    local index = #records
    -- Unchecked allow: the measure fails open; the record says so through its `sp` field.
    records[index + 1] = table.concat({ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], 'ALLOW',
      ARGV[a + 8], '', ''}, FS)
    spooled[index + 1] = spool_id .. US .. ARGV[a + 2]
    local decision_id = stream_id .. '-' .. chain_bucket .. '-' .. index
    redis.call('LPUSH', KEYS[k + 1], decision_id)
    redis.call('HSET', KEYS[k + 3], spool_id, decision_id)
  end
end
if #records == 0 then return 0 end

local decisions, sp = table.concat(records, GS), table.concat(spooled, GS)
local hash = redis.sha1hex(prev .. US .. table.concat({stream_id, catalogue_version, decisions, sp}, US))
redis.call('XADD', KEYS[1], stream_id, 'cat', catalogue_version, 'd', decisions, 'sp', sp, 'p', prev, 'h', hash)
chain_advance(KEYS[2], stream_id, hash)
return #records
