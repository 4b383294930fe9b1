-- Moves one subject's data from its pseudonym under the previous key to the current one (`debar rekey`).
-- Both names live in the subject's bucket, so the keys share a hash tag and a slot.
--   move  KEYS: old index hash, new index hash  ARGV: op, old pseudonym, new pseudonym
--         Merges the old field's entries into the new field (an entry already there wins: it is newer) and
--         drops the old field.
--   cas   KEYS: hash, the record's claim key (lua/claim.lua; "" none)  ARGV: op, field, expected value, new value,
--         the ceiling of a claim's life in ms (lib/claims.lua)
--         Replaces a record only if nobody changed it since it was read, nor holds it for a write spanning nodes.
--   list  KEYS: old decision list, new decision list  ARGV: op, chunk size
--         Moves up to a chunk of ids from the old decision list to the new one (see below); called until none is
--         left, the old list gone and the new one holding both, newest first.
local US, RS = '\31', '\30'
local op = ARGV[1]

if op == 'cas' then
  if redis.call('HGET', KEYS[1], ARGV[2]) ~= ARGV[3] then return 0 end
  local ceiling = tonumber(ARGV[5])
  if not ceiling then return redis.error_reply('ERR rekey: no claim ceiling (ARGV[5])') end
  if KEYS[2] and KEYS[2] ~= '' and claim_held(KEYS[2], ceiling) then return 0 end
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
  -- One chunk, so that no call reads a whole list (a long list is never held at once, and `unpack` takes a few
  -- thousand values at most) and a crash between calls loses nothing: each call moves the old list's newest ids to
  -- the end of the new list and removes exactly those from the old one. The new list's ids are all newer (written
  -- since the key became current) and stay in front; readers look under both names meanwhile. Returns the number
  -- moved and the number left.
  local chunk = tonumber(ARGV[2])
  local ids = redis.call('LRANGE', KEYS[1], 0, chunk - 1)
  if #ids > 0 then
    redis.call('RPUSH', KEYS[2], unpack(ids))
    redis.call('LTRIM', KEYS[1], #ids, -1)
  end
  return {#ids, redis.call('LLEN', KEYS[1])}
end
return redis.error_reply('unknown rekey op ' .. tostring(op))
