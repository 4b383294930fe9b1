-- Keeps the latest signed checkpoint for GetCheckpoint (adapters/tree_store.py): only the lease's owner, and
-- never a smaller one over a larger. KEYS: lease, checkpoint hash. ARGV: owner, size, note.
-- Returns 1 if kept, 0 if a larger one is kept already, -1 if the lease is not the owner's.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local kept = redis.call('HGET', KEYS[2], 'size')
if kept and tonumber(kept) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[2], 'size', ARGV[2], 'note', ARGV[3])
return 1
