-- Claims the subjects due for judging: each one's score becomes now + lease (a judge that dies lets it fall due
-- again). KEYS[1]: the schedule (WatchKeys.due). ARGV: now (s), lease (s), at most how many.
-- Returns member, claimed score (as Redis spells it), member, score, ...
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
local lease = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], lease, member)
  out[#out + 1] = member
  out[#out + 1] = redis.call('ZSCORE', KEYS[1], member)
end
return out
