-- Gives each repeated text (source, legal basis, authority) a short ref, allocating refs for new ones: records
-- and index entries then carry 1-3 characters instead of the text or a digest of it.
-- KEYS[1]: the texts hash: field ref -> text, field "=" .. text -> ref, field "#" -> the last ref number.
-- ARGV: texts (not empty). Returns their refs (base 36), in order.
local DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz'
local refs = {}
for i, text in ipairs(ARGV) do
  local ref = redis.call('HGET', KEYS[1], '=' .. text)
  if not ref then
    local n = redis.call('HINCRBY', KEYS[1], '#', 1)
    ref = ''
    repeat
      local digit = n % 36
      ref = string.sub(DIGITS, digit + 1, digit + 1) .. ref
      n = (n - digit) / 36
    until n == 0
    redis.call('HSET', KEYS[1], '=' .. text, ref, ref, text)
  end
  refs[i] = ref
end
return refs
