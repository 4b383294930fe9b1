-- The integrator's lease (adapters/tree_store.py). KEYS: the lease. ARGV: owner token, time to live (ms), and
-- 'hold' (take it if free, renew it if ours) or 'release' (drop it if ours). Returns 1 if the owner holds it
-- (hold) or dropped it (release), else 0.
local current = redis.call('GET', KEYS[1])
if ARGV[3] == 'release' then
  if current == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
  return 0
end
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
