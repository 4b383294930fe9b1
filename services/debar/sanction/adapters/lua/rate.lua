-- Adds checked items to a caller's counter for one fixed rate window, setting its expiry on the window's first
-- add, atomically.
-- KEYS: the counter (Keys.rate). ARGV: items to add, expiry in seconds. Returns the window's count so far.
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n == tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return n
