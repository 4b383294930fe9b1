-- Moves subscription data from a pseudonym under the previous key to the current one (`debar rekey`), one atomic
-- call per key or member:
--   set    KEYS: old subject set, new subject set (one slot: the subject's bucket)  ARGV: op
--          Merges the old set into the new one, which expires with the later of the two; drops the old one.
--   field  KEYS: a subscription's hash  ARGV: op, expected subject, new subject
--          Replaces its subject only if unchanged since read.
--   due    KEYS: the schedule  ARGV: op, old member, new member
--          Moves a scheduled subject to its new name, keeping the sooner time.
local op = ARGV[1]
if op == 'set' then
  if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
  local expires = math.max(redis.call('PEXPIRETIME', KEYS[1]), redis.call('PEXPIRETIME', KEYS[2]))
  local n = redis.call('SUNIONSTORE', KEYS[2], KEYS[2], KEYS[1])
  if expires > 0 then redis.call('PEXPIREAT', KEYS[2], expires) end
  redis.call('DEL', KEYS[1])
  return n
end
if op == 'field' then
  if redis.call('HGET', KEYS[1], 's') ~= ARGV[2] then return 0 end
  redis.call('HSET', KEYS[1], 's', ARGV[3])
  return 1
end
if op == 'due' then
  local score = redis.call('ZSCORE', KEYS[1], ARGV[2])
  if not score then return 0 end
  redis.call('ZADD', KEYS[1], 'LT', score, ARGV[3])
  redis.call('ZREM', KEYS[1], ARGV[2])
  return 1
end
return redis.error_reply('unknown op ' .. tostring(op))
