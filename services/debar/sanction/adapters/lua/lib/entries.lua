-- Shared by the scripts that change subjects' packed index values (index, write): entries separated by RS.

-- Puts `new_entry` in place of the entry starting with `prefix` in the subject's value ("" removes it); returns
-- how many entries changed.
local function entries_put(key, pseudonym, prefix, new_entry)
  local packed = redis.call('HGET', key, pseudonym)
  local kept, found, changed = {}, false, 0
  if packed then
    for entry in string.gmatch(packed, '[^\30]+') do
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
    redis.call('HSET', key, pseudonym, table.concat(kept, '\30'))
  end
  return changed
end

