#!lua flags=allow-cross-slot-keys
-- Replays spooled (fail-open) decisions into a bucket's sequencing stream as one record, idempotently: a decision already
-- replayed (its spool id is in its bucket's replayed set) is skipped, so a replay interrupted by a crash or a
-- timeout can simply run again.
--
-- KEYS: log stream, then 3 per item: subject's decision list, bucket's replayed set, bucket's map from spool id to
--       decision location.
-- ARGV: catalogue version, stream bucket, then 9 per item: spool id, decided at (ms), caller, revision, id type,
--       pseudonym, measure, at, and the server's seal over its question (domain/decision_seals.py: a run of one,
--       its spool id the nonce); the record's field `q` holds the seals of the items appended, GS-joined.
-- Returns the number of decisions appended.
local US, GS, FS = '\31', '\29', '\28'
local catalogue_version, bucket = ARGV[1], ARGV[2]
local items = (#ARGV - 2) / 9

local records, spooled, fresh, seals = {}, {}, {}, {}
for i = 0, items - 1 do
  local k, a = 1 + i * 3, 2 + i * 9
  local spool_id = ARGV[a + 1]
  if redis.call('SADD', KEYS[k + 2], spool_id) == 1 then
    local index = #records
    -- Unchecked allow: the measure fails open; the record says so through its `sp` field.
    records[index + 1] = table.concat({ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], 'ALLOW',
      ARGV[a + 8], '', ''}, FS)
    spooled[index + 1] = spool_id .. US .. ARGV[a + 2]
    fresh[index + 1] = {k, spool_id}
    seals[index + 1] = ARGV[a + 9]
  end
end
if #records == 0 then return 0 end

local stream_id = redis.call('XADD', KEYS[1], '*', 'cat', catalogue_version, 'd', table.concat(records, GS), 'sp',
  table.concat(spooled, GS), 'q', table.concat(seals, GS))
for index = 1, #fresh do
  local k, spool_id = fresh[index][1], fresh[index][2]
  local location = stream_id .. '-' .. bucket .. '-' .. (index - 1)
  redis.call('LPUSH', KEYS[k + 1], location)
  redis.call('HSET', KEYS[k + 3], spool_id, location)
end
return #records
