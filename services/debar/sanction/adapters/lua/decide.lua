#!lua flags=allow-cross-slot-keys
-- Decides checks and appends each decision to its bucket's hash-chained log, atomically, in one call.
-- Cross-slot keys are allowed so that one call carries a whole batch on one node; each item's own keys share
-- one hash tag, so a chain never spans slots.
--
-- KEYS, 4 per item: subject index hash, log stream, log head, subject's decision list.
-- ARGV: caller, catalogue version, revision, then 5 per item: id type, pseudonym, measure, measure mask, at.
-- Returns per item: {stream id, outcome, matched restriction entries (list), exemption entry or ""}.
local FS, RS = '\31', '\30'
local caller, catalogue_version, revision = ARGV[1], ARGV[2], ARGV[3]
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

local function fields(entry)
  local out = {}
  for f in string.gmatch(entry .. FS, '([^' .. FS .. ']*)' .. FS) do out[#out + 1] = f end
  return out
end

local results = {}
local items = (#ARGV - 3) / 5
for i = 0, items - 1 do
  local k, a = i * 4, 3 + i * 5
  local id_type, pseudonym, measure = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local mask, at_text = tonumber(ARGV[a + 4]), ARGV[a + 5]
  local at = tonumber(at_text)
  local grounds, exemption = {}, ''
  local packed = redis.call('HGET', KEYS[k + 1], pseudonym)
  if packed then
    for entry in string.gmatch(packed, '[^' .. RS .. ']+') do
      local f = fields(entry)
      -- f: kind, id, role, mask, from, until, ...
      if bit.band(tonumber(f[4]), mask) ~= 0 and tonumber(f[5]) <= at and (f[6] == '' or at < tonumber(f[6])) then
        if f[1] == 'R' then grounds[#grounds + 1] = entry else exemption = entry end
      end
    end
  end
  local outcome = 'ALLOW'
  if #grounds > 0 and exemption == '' then outcome = 'DENY' end

  -- Chain: each entry's hash commits to the previous entry's hash and to every field of its own.
  local ms, seq, prev = now_ms, 0, ''
  local head = redis.call('GET', KEYS[k + 3])
  if head then
    local last_ms, last_seq, last_hash = string.match(head, '^(%d+) (%d+) (%x*)$')
    last_ms, last_seq, prev = tonumber(last_ms), tonumber(last_seq), last_hash
    if ms <= last_ms then ms, seq = last_ms, last_seq + 1 end
  end
  local stream_id = string.format('%d-%d', ms, seq)
  local grounds_text = table.concat(grounds, RS)
  local body = table.concat({stream_id, caller, id_type, pseudonym, measure, outcome, at_text, grounds_text,
    exemption, revision, catalogue_version, ''}, FS)
  local hash = redis.sha1hex(prev .. FS .. body)
  redis.call('XADD', KEYS[k + 2], stream_id, 'c', caller, 't', id_type, 's', pseudonym, 'm', measure,
    'o', outcome, 'at', at_text, 'g', grounds_text, 'x', exemption, 'rev', revision, 'cat', catalogue_version,
    'sp', '', 'p', prev, 'h', hash)
  redis.call('SET', KEYS[k + 3], string.format('%d %d %s', ms, seq, hash))
  redis.call('LPUSH', KEYS[k + 4], stream_id)
  results[#results + 1] = {stream_id, outcome, grounds, exemption}
end
return results
