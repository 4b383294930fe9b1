#!lua flags=allow-cross-slot-keys
-- Claims the records of a registry write that spans Redis Cluster nodes, before its index and log entries are
-- written on the other nodes (adapters/redis_store.py, _write_ops): a record is claimed only if it is still the one
-- the write was made of and no other write holds a claim on it, so that of two writes made of the same record one
-- is refused here, having written nothing anywhere, and not after its entries are stored. write.lua then stores
-- the record only under the claim, and drops it. A claim left by a writer that died lapses.
-- KEYS: one key of this node (the others are reached through the allow-cross-slot-keys flag).
-- ARGV: "claim" or "release" (the claims this write holds, after another node refused it), the write's token, the
-- claim's life in ms, the ceiling of any claim's life in ms (lib/claims.lua), then 4 per record: its hash key, its field, the stored record the write replaces (its bytes as
-- read, "" for none), its claim key (Keys.record_claim).
-- Returns 1; an error "STALE <field>", with nothing claimed, where a record changed or another write claims it.
local mode, token, life, ceiling = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if not ceiling then return redis.error_reply('ERR claim: no claim ceiling (ARGV[4])') end
if mode == 'release' then
  for i = 5, #ARGV, 4 do
    if redis.call('GET', ARGV[i + 3]) == token then
      redis.call('DEL', ARGV[i + 3])
    end
  end
  return 1
end
for i = 5, #ARGV, 4 do
  if (redis.call('HGET', ARGV[i], ARGV[i + 1]) or '') ~= ARGV[i + 2] or claim_held(ARGV[i + 3], ceiling) then
    return redis.error_reply('STALE ' .. ARGV[i + 1])
  end
end
for i = 5, #ARGV, 4 do
  redis.call('SET', ARGV[i + 3], token, 'PX', life)
end
return 1
