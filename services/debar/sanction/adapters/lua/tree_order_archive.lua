-- Moves leaf-order items out of Redis once `debar log archive` has written them to the archive folder (fsync'd),
-- in one step (adapters/tree_store.py): the list's first items are removed and `orderbase` (the run's cursor)
-- moves past them; the leaf-index fields of records archived are deleted; records not archived are kept in the
-- `unarchived` hash (what keeps their tiles in Redis), and those archived since leave it. A compare-and-set on
-- `orderbase`: a second run at the same time, or a run repeated after a crash, changes nothing twice.
-- KEYS: orderbase, records list, leaf hash, unarchived hash.
-- ARGV: the orderbase the run read, how many items it moved (N), D leaf fields to delete (D, then the fields),
-- U records kept (U, then field/item pairs), A records leaving `unarchived` (A, then the fields).
-- Returns N, or -1 (nothing changed) if orderbase is not what the run read or the list holds fewer than N items.
local base = redis.call('GET', KEYS[1]) or '0'
if base ~= ARGV[1] then return -1 end
local moved = tonumber(ARGV[2])
if redis.call('LLEN', KEYS[2]) < moved then return -1 end
if moved > 0 then
  redis.call('LTRIM', KEYS[2], moved, -1)
  redis.call('SET', KEYS[1], tonumber(base) + moved)
end
local i = 3
local deletes = tonumber(ARGV[i])
for k = 1, deletes do redis.call('HDEL', KEYS[3], ARGV[i + k]) end
i = i + deletes + 1
local kept = tonumber(ARGV[i])
for k = 0, kept - 1 do redis.call('HSET', KEYS[4], ARGV[i + 1 + 2 * k], ARGV[i + 2 + 2 * k]) end
i = i + 2 * kept + 1
local leaving = tonumber(ARGV[i])
for k = 1, leaving do redis.call('HDEL', KEYS[4], ARGV[i + k]) end
return moved
