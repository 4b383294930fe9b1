#!lua flags=allow-cross-slot-keys
-- Stores restriction records and replaces or removes subjects' index entries, many per call (the bulk import).
-- KEYS: one key of this node (declared keys must share a slot on Redis Cluster; the others are reached through
-- the allow-cross-slot-keys flag on this node, callers group operations by node).
-- ARGV[1]: a msgpack array {records, entries}: records flat, 3 per record (hash key, restriction id, record);
-- entries flat, 4 per operation (index hash key, pseudonym, entry key prefix, new entry or "" to remove it),
-- applied in order as index.lua does; packed without bin types (the script's cmsgpack predates them). One
-- argument rather than thousands keeps the client's packing cheap.
-- Returns the number of index entries that changed.
local RS = '\30'
local ops = cmsgpack.unpack(ARGV[1])
local records, entries = ops[1], ops[2]
for i = 1, #records, 3 do
  redis.call('HSET', records[i], records[i + 1], records[i + 2])
end
local changed = 0
for i = 1, #entries, 4 do
  local key, pseudonym, prefix, new_entry = entries[i], entries[i + 1], entries[i + 2], entries[i + 3]
  local packed = redis.call('HGET', key, pseudonym)
  local kept, found = {}, false
  if packed then
    for entry in string.gmatch(packed, '[^' .. RS .. ']+') do
      if string.sub(entry, 1, #prefix) == prefix then
        found = true
        if entry ~= new_entry then changed = changed + 1 end
      else
        kept[#kept + 1] = entry
      end
    end
  end
  if new_entry ~= '' then
    kept[#kept + 1] = new_entry
    if not found then changed = changed + 1 end
  end
  if #kept == 0 then
    if packed then redis.call('HDEL', key, pseudonym) end
  else
    redis.call('HSET', key, pseudonym, table.concat(kept, RS))
  end
end
return changed
