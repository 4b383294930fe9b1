#!lua flags=allow-cross-slot-keys
-- Replaces or removes entries in subjects' packed index values, several subjects per call.
-- KEYS: the first operation's index hash (declared keys must share a slot on Redis Cluster; the others are
-- reached through the allow-cross-slot-keys flag on this node, callers group operations by node).
-- ARGV, 4 per operation: index hash key, pseudonym, entry key prefix, new entry ("" removes the entry).
-- Returns the number of entries that changed.
local changed = 0
for i = 1, #ARGV, 4 do
  changed = changed + entries_put(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
end
return changed
