-- Stores an owner's new subscriptions, all or none: none when the owner would hold more than its quota.
-- KEYS[1]: the owner's zset of subscription ids by until (WatchKeys.owned); KEYS[1+i]: subscription i's hash.
-- ARGV: now (s), quota, then per subscription: id, until (s), subject, measures (comma-separated), tag, created,
-- told ("CODE=A;CODE=D").
-- Returns -1 when stored, else how many live subscriptions the owner holds.
local owned = KEYS[1]
redis.call('ZREMRANGEBYSCORE', owned, '-inf', ARGV[1])
local held = redis.call('ZCARD', owned)
local n = #KEYS - 1
if held + n > tonumber(ARGV[2]) then return held end
for i = 1, n do
  local a = 2 + (i - 1) * 7
  local id, untils = ARGV[a + 1], ARGV[a + 2]
  local key = KEYS[1 + i]
  redis.call('HSET', key, 's', ARGV[a + 3], 'm', ARGV[a + 4], 'u', untils, 't', ARGV[a + 5], 'c', ARGV[a + 6])
  for code, outcome in string.gmatch(ARGV[a + 7], '([^;=]+)=([AD])') do
    redis.call('HSET', key, 'o:' .. code, outcome)
  end
  redis.call('EXPIREAT', key, untils)
  redis.call('ZADD', owned, untils, id)
end
local last = redis.call('ZRANGE', owned, -1, -1, 'WITHSCORES')
if last[2] then redis.call('EXPIREAT', owned, last[2]) end
return -1
