#!lua flags=no-writes
-- Reads leaf-order items (adapters/tree_store.py) by their number in the whole leaf order, atomically with how
-- many were moved to the archive (`debar log archive`): the list's first item is item number `base`.
-- KEYS: the orderbase string, the records list. ARGV: the first item's number, how many.
-- Returns {base, items from number max(first, base)}.
local base = tonumber(redis.call('GET', KEYS[1]) or '0')
local first = math.max(tonumber(ARGV[1]), base)
local count = tonumber(ARGV[2]) - (first - tonumber(ARGV[1]))
if count <= 0 then return {base, {}} end
return {base, redis.call('LRANGE', KEYS[2], first - base, first - base + count - 1)}
