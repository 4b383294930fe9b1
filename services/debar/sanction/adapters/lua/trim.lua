-- Drops a chain's oldest records once they are archived (`debar log archive`): only if the chain still starts
-- with the first archived record (nobody trimmed or rewrote it meanwhile), and records where the chain now
-- continues.
-- KEYS: the chain's log stream, its log base. ARGV: first archived id, last archived id, the id after the last,
-- the last archived record's hash. Returns how many records were trimmed, -1 if the chain changed.
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #first == 0 or first[1][1] ~= ARGV[1] then return -1 end
local trimmed = redis.call('XTRIM', KEYS[1], 'MINID', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2] .. ' ' .. ARGV[4])
return trimmed
