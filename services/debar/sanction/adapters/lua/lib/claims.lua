-- Shared by the scripts that respect record claims (claim, write, rekey): a claim holds only while it lapses within
-- the longest life a debar writer gives one (`ceiling`, ms, keys.CLAIM_CEILING_MS). A key without an expiry, or with
-- a longer one, is no claim debar made (an insider's, planted to hold the record's writes off for ever): disregarded.
local function claim_held(key, ceiling)
  local ttl = redis.call('PTTL', key)
  return ttl >= 0 and ttl <= ceiling
end
