-- Tells one change: if the subscription still exists and its measure's outcome last told is still the one the
-- judge read, records the new one and appends the change to the owner's stream, trimmed past the retention.
-- KEYS[1]: the subscription's hash, KEYS[2]: the owner's change stream.
-- ARGV: measure, told (A or D), now told, minimum id kept (ms), retention (ms), then the stream entry's fields and
-- values. ARGV[6] is the entry's id (its MAC covers it): if it is not newer than the stream's last id, nothing is
-- done and {'retry', last id} returned, for the caller to MAC the change again under a newer id. Returns the
-- entry's id (the cursor), or false.
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local field = 'o:' .. ARGV[1]
local current = redis.call('HGET', KEYS[1], field) or 'A'
if current ~= ARGV[2] then return false end
local last = '0-0'
if redis.call('EXISTS', KEYS[2]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[2])
  for i = 1, #info, 2 do if info[i] == 'last-generated-id' then last = info[i + 1] end end
end
local function parts(id)
  local dash = string.find(id, '-', 1, true)
  return tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
end
local lms, lseq = parts(last)
local ims, iseq = parts(ARGV[6])
if ims < lms or (ims == lms and iseq <= lseq) then return {'retry', last} end
redis.call('HSET', KEYS[1], field, ARGV[3])
local entry = {}
for i = 7, #ARGV do entry[#entry + 1] = ARGV[i] end
local id = redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[4], ARGV[6], unpack(entry))
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return id
