-- A judged subject: scheduled at its next boundary, or dropped, unless it was touched since the claim (its score
-- is no longer the claim's: it is judged again). KEYS[1]: the schedule. ARGV: member, claimed score, next ("" for
-- none). Returns 1 when the claim still held.
if redis.call('ZSCORE', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1
