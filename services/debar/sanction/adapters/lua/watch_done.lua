-- A judged subject: scheduled at its next boundary, or dropped, if the claim still holds. If it does not (touched
-- since the claim, or judged by another server after this one's lease lapsed), it is judged once more at once: the
-- last judge always reads the last state. KEYS[1]: the schedule. ARGV: member, claimed score, next ("" for none),
-- now. Returns 1 when the claim still held.
if redis.call('ZSCORE', KEYS[1], ARGV[1]) ~= ARGV[2] then
  redis.call('ZADD', KEYS[1], 'LT', ARGV[4], ARGV[1])
  return 0
end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1
