-- Commits one integration step of the Merkle tree (adapters/tree_store.py), all keys in the {tlog} slot: only
-- for the integrator holding the lease, and only onto the tree size it read (a compare-and-set: a second
-- integrator can never fork the tree or append the same records twice).
-- KEYS: lease, state, cursors, records, leaf, then one tile string per tile appended to.
-- ARGV: owner, old size, new size, edge (tlog.compact serialization), root (hex), cursor count C, C pairs
-- (stream, record id), record count R, R triples (records list item, leaf field, first leaf), then per tile key
-- its expected length before the append and the bytes to append.
-- Returns 1; -1 if the lease is not the owner's; -2 if the size is not the old size; -3 if a tile's length is not
-- what the old size implies (the stored tree was changed behind the integrator's back).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local size = redis.call('HGET', KEYS[2], 'size')
if (size or '0') ~= ARGV[2] then return -2 end
local i = 6
local cursors = tonumber(ARGV[i])
local cursor_at = i + 1
i = i + 1 + 2 * cursors
local records = tonumber(ARGV[i])
local records_at = i + 1
i = i + 1 + 3 * records
for k = 6, #KEYS do
  if redis.call('STRLEN', KEYS[k]) ~= tonumber(ARGV[i + 2 * (k - 6)]) then return -3 end
end
for k = 6, #KEYS do
  redis.call('APPEND', KEYS[k], ARGV[i + 2 * (k - 6) + 1])
end
for c = 0, cursors - 1 do
  redis.call('HSET', KEYS[3], ARGV[cursor_at + 2 * c], ARGV[cursor_at + 2 * c + 1])
end
for r = 0, records - 1 do
  redis.call('RPUSH', KEYS[4], ARGV[records_at + 3 * r])
  redis.call('HSET', KEYS[5], ARGV[records_at + 3 * r + 1], ARGV[records_at + 3 * r + 2])
end
redis.call('HSET', KEYS[2], 'size', ARGV[3], 'edge', ARGV[4], 'root', ARGV[5])
return 1
