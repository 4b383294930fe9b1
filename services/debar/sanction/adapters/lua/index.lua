#!lua flags=allow-cross-slot-keys
-- Replaces or removes entries in subjects' packed index values, several subjects per call.
-- KEYS: the first operation's index hash (declared keys must share a slot on Redis Cluster; the others are
-- reached through the allow-cross-slot-keys flag on this node, callers group operations by node).
-- ARGV, 4 per operation: index hash key, pseudonym, entry key prefix, new entry ("" removes the entry).
-- Returns the number of entries that changed.
local RS = '\30'
local changed = 0
for i = 1, #ARGV, 4 do
  local key, pseudonym, prefix, new_entry = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local packed = redis.call('HGET', key, pseudonym) or ''
  local kept, found = {}, false
  for entry in string.gmatch(packed, '[^' .. RS .. ']+') do
    if string.sub(entry, 1, #prefix) == prefix then
      found = true
      if entry ~= new_entry then changed = changed + 1 end
    else
      kept[#kept + 1] = entry
    end
  end
  if new_entry ~= '' then
    kept[#kept + 1] = new_entry
    if not found then changed = changed + 1 end
  end
  if #kept == 0 then
    redis.call('HDEL', key, pseudonym)
  else
    redis.call('HSET', key, pseudonym, table.concat(kept, RS))
  end
end
return changed
