#!lua flags=allow-cross-slot-keys
-- Stores restriction records and replaces or removes subjects' index entries, many per call (the bulk import).
-- KEYS: one key of this node (declared keys must share a slot on Redis Cluster; the others are reached through
-- the allow-cross-slot-keys flag on this node, callers group operations by node).
-- ARGV[1]: a msgpack array {records, entries}: records flat, 3 per record (hash key, restriction id, record);
-- entries flat, 4 per operation (index hash key, pseudonym, entry key prefix, new entry or "" to remove it),
-- applied in order (lib/entries.lua); packed without bin types (the script's cmsgpack predates them). One
-- argument rather than thousands keeps the client's packing cheap.
-- Returns the number of index entries that changed.
local ops = cmsgpack.unpack(ARGV[1])
local records, entries = ops[1], ops[2]
for i = 1, #records, 3 do
  redis.call('HSET', records[i], records[i + 1], records[i + 2])
end
local changed = 0
for i = 1, #entries, 4 do
  changed = changed + entries_put(entries[i], entries[i + 1], entries[i + 2], entries[i + 3])
end
return changed
