-- Tells one change: if the subscription still exists and its measure's outcome last told is still the one the
-- judge read, records the new one and appends the change to the owner's stream, trimmed past the retention.
-- KEYS[1]: the subscription's hash, KEYS[2]: the owner's change stream.
-- ARGV: measure, told (A or D), now told, minimum id kept (ms), retention (ms), then the stream entry's fields and
-- values. Returns the entry's id (the cursor), or false.
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local field = 'o:' .. ARGV[1]
local current = redis.call('HGET', KEYS[1], field) or 'A'
if current ~= ARGV[2] then return false end
redis.call('HSET', KEYS[1], field, ARGV[3])
local entry = {}
for i = 6, #ARGV do entry[#entry + 1] = ARGV[i] end
local id = redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[4], '*', unpack(entry))
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return id
