-- Moves one subject's data from its pseudonym under the previous key to the current one (`debar rekey`).
-- Both names live in the subject's bucket, so the keys share a hash tag and a slot.
--   move  KEYS: old index hash, new index hash  ARGV: op, old pseudonym, new pseudonym
--         Merges the old field's entries into the new field (an entry already there wins: it is newer) and
--         drops the old field.
--   cas   KEYS: hash  ARGV: op, field, expected value, new value
--         Replaces a record only if nobody changed it since it was read.
--   list  KEYS: old decision list, new decision list  ARGV: op
--         Merges two decision lists, newest first, and drops the old one.
local US, RS = '\31', '\30'
local op = ARGV[1]

if op == 'cas' then
  if redis.call('HGET', KEYS[1], ARGV[2]) ~= ARGV[3] then return 0 end
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[4])
  return 1
end

if op == 'move' then
  local old = redis.call('HGET', KEYS[1], ARGV[2])
  if not old then return 0 end
  local merged, have = {}, {}
  local new = redis.call('HGET', KEYS[2], ARGV[3])
  if new then
    for entry in string.gmatch(new, '[^' .. RS .. ']+') do
      merged[#merged + 1] = entry
      have[string.match(entry, '^[^' .. US .. ']*' .. US .. '[^' .. US .. ']*' .. US .. '[^' .. US .. ']*' .. US)] = true
    end
  end
  for entry in string.gmatch(old, '[^' .. RS .. ']+') do
    local key = string.match(entry, '^[^' .. US .. ']*' .. US .. '[^' .. US .. ']*' .. US .. '[^' .. US .. ']*' .. US)
    if not have[key] then merged[#merged + 1] = entry end
  end
  redis.call('HSET', KEYS[2], ARGV[3], table.concat(merged, RS))
  redis.call('HDEL', KEYS[1], ARGV[2])
  return 1
end

if op == 'list' then
  local ids = redis.call('LRANGE', KEYS[1], 0, -1)
  if #ids == 0 then return 0 end
  for _, id in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do ids[#ids + 1] = id end
  local function parts(id)
    local ms, seq, _, index = string.match(id, '^S?(%d+)-(%w+)-(%x+)-?(%d*)$')
    return tonumber(ms) or 0, tonumber(seq) or 0, tonumber(index) or 0
  end
  table.sort(ids, function(a, b)
    local am, as, ai = parts(a)
    local bm, bs, bi = parts(b)
    if am ~= bm then return am > bm end
    if as ~= bs then return as > bs end
    return ai > bi
  end)
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('RPUSH', KEYS[2], unpack(ids))
  return #ids
end
return redis.error_reply('unknown rekey op ' .. tostring(op))
