#!lua flags=allow-cross-slot-keys,no-writes
-- Reads many hash fields in one call (the bulk import reads a chunk's stored records): cheaper for the client
-- than a pipeline of as many HGETs.
-- KEYS: one key of this node (callers group fields by node). ARGV: hash key, field, hash key, field, ...
-- Returns one value per pair, nil where there is none.
local out = {}
for i = 1, #ARGV, 2 do
  out[#out + 1] = redis.call('HGET', ARGV[i], ARGV[i + 1]) or false
end
return out
