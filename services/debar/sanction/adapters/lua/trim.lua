-- Drops a stream's oldest records once they are archived (`debar log archive`): only if the stream still starts
-- with the first archived record (nobody trimmed or rewrote it meanwhile), and records where it now continues.
-- KEYS: the log stream, its log base. ARGV: first archived id, last archived id, the id after the last. Returns how
-- many records were trimmed, -1 if the stream changed.
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #first == 0 or first[1][1] ~= ARGV[1] then return -1 end
local trimmed = redis.call('XTRIM', KEYS[1], 'MINID', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2])
return trimmed
