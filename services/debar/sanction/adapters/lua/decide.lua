#!lua flags=allow-cross-slot-keys
-- Decides checks and appends them, as one record, to a bucket's sequencing stream, atomically, in one call (the
-- Merkle log integrates the record right after: app/integrator.py). On Redis Cluster a command's declared keys
-- must share one slot, so KEYS are only the stream's (the bucket of the first item); each item's own keys come in
-- ARGV, and the allow-cross-slot-keys flag lets the script reach them on this node (callers group items by node
-- first).
--
-- KEYS: the log stream.
-- ARGV: catalogue version, stream bucket, the number of rate counters R, then R times: counter key (Keys.rate),
--       items to add, the rate's limit, expiry in seconds (rate.lua's counting, in this call: one round trip per
--       check); then one argument holding every item, items joined by GS, an item's fields by US (one argument
--       instead of twelve per item: encoding arguments is a large part of a batch's client cost): first what is
--       the subject's (the client keeps it): subject index hash key, subject's decision list key, id type,
--       pseudonym, during a key rotation the index hash key and pseudonym under the previous key (else both
--       empty); then caller, data revision, measure, measure mask, at (epoch seconds), its rate counter's
--       number (1..R, or 0 for none), and its seal or "": each maximal run of consecutive items of one counter
--       number (decided together or refused together, below) carries on its first item the server's seal over the
--       run's questions (domain/decision_seals.py: "count:nonce:mac", no US in it). Items may come from several
--       callers (concurrent checks share a call).
--       Last, the refs (joined by US) of the sources whose restrictions a permit granted by one identity may
--       override (four eyes, below).
-- Returns: {stream id, answers, counts}: answers one string, per item decided (GS between items) its outcome,
-- matched restriction entries (RS between them) and exemption entry or "", FS between the three, or nothing at
-- all for an allow that matched no entry (most answers: one bulk reply, and nothing to build or parse for a plain
-- allow; a nested reply per item costs the client more to parse than the check costs here); the exemption only
-- when it turned a deny into the allow (then the matched restrictions are the ones it overrode); counts: each
-- rate counter's count after adding. An item whose counter went past its limit is not decided (nor logged): its
-- call is refused. With no item decided, nothing is appended and the stream id is "".
-- A record's field `d` holds its decisions, GS-separated; a decision's fields are FS-separated (see
-- domain/log_records.py). Its id is the one XADD picks (Redis time, increasing in the stream); each subject's
-- decision list gets "<stream id>-<bucket>-<index>", the decision's location (shown only as an external id).
-- When an item's subject is in another bucket than the stream's (a batch's record goes to the stream of its first
-- item's bucket), the record's field `sb` holds every item's subject bucket, 3 characters each, in order, so that
-- `debar log archive` finds the lists to drop archived decisions from (it is not in the Merkle log's entries).
-- The record's field `q` holds the seals of the runs decided, GS-joined, in order (not in the Merkle log's entries
-- either: `debar log verify` checks them against the decisions' questions).
local US, RS, GS, FS = '\31', '\30', '\29', '\28'
-- An index entry starts: kind, id, role, measure mask, from, until (see domain/entries.py).
local ENTRY = '^(%a)\31[^\31]*\31[^\31]*\31(%d+)\31(%d+)\31(%d*)\31'
local catalogue_version, bucket = ARGV[1], ARGV[2]
local rates = tonumber(ARGV[3])
local items = ARGV[4 + 4 * rates] or ''
local ITEM = string.rep('([^\31]*)\31', 12) .. '([^\31]*)$'

-- Four eyes (domain/four_eyes.py): a permit not confirmed by a second registry identity overrides a refusal only
-- when every restriction it meets is of a source whose lifts need no confirmation (a court order's permit needs
-- two identities, whenever the order arrives); a confirmed permit (a twelfth field "1") is preferred to it.
-- domain/rules.py:evaluate is the same rule. Only items with a permit covering them reach this.
local alone_overrides = {}
for ref in string.gmatch(ARGV[5 + 4 * rates] or '', '[^\31]+') do alone_overrides[ref] = true end
local CONFIRMED = '^X' .. string.rep('\31[^\31]*', 10) .. '\31' .. '1$'
local SOURCE = '^R' .. string.rep('\31[^\31]*', 5) .. '\31([^\31]*)\31'
local function overridable_alone(grounds)
  for g = 1, #grounds do
    if not alone_overrides[string.match(grounds[g], SOURCE)] then return false end
  end
  return true
end

local counts, refused = {}, {}
for r = 1, rates do
  local at = 4 * r
  local cost = tonumber(ARGV[at + 1])
  local n = redis.call('INCRBY', ARGV[at], cost)
  if n == cost then redis.call('EXPIRE', ARGV[at], ARGV[at + 3]) end
  counts[r] = n
  refused[tostring(r)] = n > tonumber(ARGV[at + 2])
end

local answers, records, lists, buckets, seals, elsewhere = {}, {}, {}, {}, {}, false
for item in string.gmatch(items, '[^' .. GS .. ']+') do
  local index_key, decisions_key, id_type, pseudonym, alias_key, alias, caller, revision, measure, mask_text,
    at_text, rate, seal = string.match(item, ITEM)
  if not refused[rate] then  -- else its call is refused: neither decided nor logged
    if seal ~= '' then seals[#seals + 1] = seal end
    local mask = tonumber(mask_text)
    local at = tonumber(at_text)
    local grounds, exemption, alone = nil, '', ''
    local packed = redis.call('HGET', index_key, pseudonym)
    if alias ~= '' then  -- entries not re-keyed yet
      local older = redis.call('HGET', alias_key, alias)
      if older then packed = (packed or '') .. RS .. older end
    end
    if packed then
      for entry in string.gmatch(packed, '[^' .. RS .. ']+') do
        local kind, entry_mask, from, till = string.match(entry, ENTRY)
        if bit.band(tonumber(entry_mask), mask) ~= 0 and tonumber(from) <= at and (till == '' or at < tonumber(till)) then
          if kind ~= 'R' then
            if string.find(entry, CONFIRMED) then exemption = entry else alone = entry end
          elseif grounds then
            grounds[#grounds + 1] = entry
          else
            grounds = {entry}
          end
        end
      end
    end
    -- An exemption is named only when it turned a refusal into this allow: a court permit is what lets a
    -- restricted subject through, and naming one for a subject nothing restricts would tell the platform and the
    -- person that a permit was used, and list the subject as exempted in the log. domain/rules.py:evaluate is the
    -- same rule in Python; tests/integration/test_check_rule.py holds the two to each other.
    local matched, outcome = '', 'ALLOW'
    if grounds then
      if exemption == '' and alone ~= '' and overridable_alone(grounds) then exemption = alone end
      matched = table.concat(grounds, RS)
      if exemption == '' then outcome = 'DENY' end
    else
      exemption = ''
    end
    local n = #lists + 1
    records[n] = caller .. FS .. revision .. FS .. id_type .. FS .. pseudonym .. FS .. measure .. FS .. outcome .. FS ..
      at_text .. FS .. matched .. FS .. exemption
    lists[n] = decisions_key
    local tag = string.find(decisions_key, '{', 1, true)  -- the prefix has no brace: the bucket's hash tag
    local own = string.sub(decisions_key, tag + 1, tag + 3)
    buckets[n] = own
    if own ~= bucket then elsewhere = true end
    if matched == '' then answers[n] = '' else answers[n] = outcome .. FS .. matched .. FS .. exemption end
  end
end
if #lists == 0 then return {'', '', counts} end

local stream_id
if elsewhere then
  stream_id = redis.call('XADD', KEYS[1], '*', 'cat', catalogue_version, 'd', table.concat(records, GS), 'sb',
    table.concat(buckets), 'q', table.concat(seals, GS))
else
  stream_id = redis.call('XADD', KEYS[1], '*', 'cat', catalogue_version, 'd', table.concat(records, GS), 'q',
    table.concat(seals, GS))
end
for i = 1, #lists do
  redis.call('LPUSH', lists[i], stream_id .. '-' .. bucket .. '-' .. (i - 1))
end
return {stream_id, table.concat(answers, GS), counts}
