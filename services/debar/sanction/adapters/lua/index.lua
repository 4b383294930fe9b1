#!lua flags=allow-cross-slot-keys
-- Replaces or removes entries in subjects' packed index values, several subjects per call.
-- KEYS: index hashes. ARGV, 4 per operation: key number (1-based), pseudonym, entry key prefix,
-- new entry ("" removes the entry). Returns the number of entries that changed.
local RS = '\30'
local changed = 0
for i = 1, #ARGV, 4 do
  local key, pseudonym, prefix, new_entry = KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
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
