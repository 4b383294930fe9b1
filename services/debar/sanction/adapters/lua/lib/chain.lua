-- Shared by the scripts that append to a hash chain (decide, replay, objection). A chain's head key holds
-- "<ms> <seq> <hash>" of its last record.

-- The next record's stream id (Redis time, kept after the last record's) and the previous record's hash.
local function chain_next(head_key)
  local clock = redis.call('TIME')
  local ms, seq, prev = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000), 0, ''
  local head = redis.call('GET', head_key)
  if head then
    local last_ms, last_seq, last_hash = string.match(head, '^(%d+) (%d+) (%x*)$')
    last_ms, last_seq, prev = tonumber(last_ms), tonumber(last_seq), last_hash
    if ms <= last_ms then ms, seq = last_ms, last_seq + 1 end
  end
  return string.format('%d-%d', ms, seq), prev
end

-- Records `hash` as the chain's last, under `stream_id` (as chain_next gave it).
local function chain_advance(head_key, stream_id, hash)
  redis.call('SET', head_key, (string.gsub(stream_id, '-', ' ')) .. ' ' .. hash)
end

