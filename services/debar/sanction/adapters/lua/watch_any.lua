#!lua flags=allow-cross-slot-keys,no-writes
-- Which of many subjects have a subscription set, in one call (a registry write asks before and after it: an
-- import asks for thousands of subjects at a time).
-- KEYS: one key of this node (declared keys must share a slot on Redis Cluster; the others are reached through the
-- allow-cross-slot-keys flag on this node, callers group subjects by node).
-- ARGV, per subject: how many keys it has (1, or 2 during a key rotation: the alias's set too), then those keys.
-- Returns the positions (1-based, in ARGV's order of subjects) of the subjects with a set.
local found, i, n = {}, 1, 0
while i <= #ARGV do
  local count = tonumber(ARGV[i])
  n = n + 1
  for j = 1, count do
    if redis.call('EXISTS', ARGV[i + j]) == 1 then
      found[#found + 1] = n
      break
    end
  end
  i = i + count + 1
end
return found
