-- Forgets level-0 tiles that `debar log archive` has written to the archive folder (adapters/tree_store.py):
-- each tile is marked archived in the bitmap, then its key deleted, so a reader missing a tile can tell an
-- archived one from a lost one. Only a full tile leaves (a tile is immutable once full); one already archived
-- (a run interrupted after its files were written) is skipped.
-- KEYS: the archived bitmap, then the tiles. ARGV: the tiles' numbers (in KEYS' order), then a full tile's length.
-- Returns how many tiles were forgotten, or -1 (nothing changed) if one is neither full nor archived.
local full = tonumber(ARGV[#KEYS])
for i = 2, #KEYS do
  if redis.call('STRLEN', KEYS[i]) ~= full and redis.call('GETBIT', KEYS[1], ARGV[i - 1]) ~= 1 then return -1 end
end
local forgotten = 0
for i = 2, #KEYS do
  redis.call('SETBIT', KEYS[1], ARGV[i - 1], 1)
  forgotten = forgotten + redis.call('DEL', KEYS[i])
end
return forgotten
