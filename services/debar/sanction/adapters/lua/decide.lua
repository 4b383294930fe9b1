#!lua flags=allow-cross-slot-keys
-- Decides checks and appends them, as one record, to a hash-chained decision log, atomically, in one call.
-- Cross-slot keys are allowed so that one call carries a whole batch on one node (Redis Cluster callers group
-- items by node first); the log chain is the one of the first item's bucket, which lives on that node.
--
-- KEYS: log stream, log head, then 2 per item: subject index hash, subject's decision list.
-- ARGV: caller, catalogue version, revision, chain bucket, then 5 per item: id type, pseudonym, measure,
--       measure mask, at (epoch seconds).
-- Returns: {stream id, {outcome, matched restriction entries, exemption entry or ""} per item}.
-- A record's field `d` holds its decisions, GS-separated; a decision's fields are FS-separated (see chain.py).
local US, RS, GS, FS = '\31', '\30', '\29', '\28'
-- An index entry starts: kind, id, role, measure mask, from, until (see codec.py).
local ENTRY = '^(%a)\31[^\31]*\31[^\31]*\31(%d+)\31(%d+)\31(%d*)\31'
local caller, catalogue_version, revision, chain_bucket = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local items = (#ARGV - 4) / 5

local clock = redis.call('TIME')
local ms, seq, prev = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000), 0, ''
local head = redis.call('GET', KEYS[2])
if head then
  local last_ms, last_seq, last_hash = string.match(head, '^(%d+) (%d+) (%x*)$')
  last_ms, last_seq, prev = tonumber(last_ms), tonumber(last_seq), last_hash
  if ms <= last_ms then ms, seq = last_ms, last_seq + 1 end
end
local stream_id = string.format('%d-%d', ms, seq)

local answers, records = {}, {}
for i = 0, items - 1 do
  local k, a = 2 + i * 2, 4 + i * 5
  local id_type, pseudonym, measure = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local mask, at_text = tonumber(ARGV[a + 4]), ARGV[a + 5]
  local at = tonumber(at_text)
  local grounds, exemption = {}, ''
  local packed = redis.call('HGET', KEYS[k + 1], pseudonym)
  if packed then
    for entry in string.gmatch(packed, '[^' .. RS .. ']+') do
      local kind, entry_mask, from, till = string.match(entry, ENTRY)
      if bit.band(tonumber(entry_mask), mask) ~= 0 and tonumber(from) <= at and (till == '' or at < tonumber(till)) then
        if kind == 'R' then grounds[#grounds + 1] = entry else exemption = entry end
      end
    end
  end
  local outcome = 'ALLOW'
  if #grounds > 0 and exemption == '' then outcome = 'DENY' end
  records[#records + 1] = table.concat({id_type, pseudonym, measure, outcome, at_text,
    table.concat(grounds, RS), exemption}, FS)
  redis.call('LPUSH', KEYS[k + 2], stream_id .. '-' .. chain_bucket .. '-' .. i)
  answers[#answers + 1] = {outcome, grounds, exemption}
end

-- The record's hash commits to the previous record's hash and to every field of its own.
local decisions = table.concat(records, GS)
local hash = redis.sha1hex(prev .. US .. table.concat({stream_id, caller, revision, catalogue_version, decisions, ''}, US))
redis.call('XADD', KEYS[1], stream_id, 'c', caller, 'rev', revision, 'cat', catalogue_version, 'd', decisions,
  'sp', '', 'p', prev, 'h', hash)
redis.call('SET', KEYS[2], string.format('%d %d %s', ms, seq, hash))
return {stream_id, answers}
