-- Removes one of an owner's live subscriptions. KEYS[1]: the owner's zset (WatchKeys.owned), KEYS[2]: the
-- subscription's hash. ARGV: id, now (s). Returns the subject, until and creation time of the removed one, or
-- false.
local untils = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not untils or tonumber(untils) <= tonumber(ARGV[2]) then return false end
local found = redis.call('HMGET', KEYS[2], 's', 'c')
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return {found[1] or '', untils, found[2] or ''}
