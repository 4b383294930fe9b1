"""Redis key layout, designed for Redis Cluster: everything one check reads or writes for a subject carries the
subject's bucket as hash tag, so it lives in one slot and one script call covers it.

    {p}:s:{B}:N      hash  pseudonym -> packed index entries (restrictions reaching the subject, exemptions)
    {p}:x:{B}        hash  exemption id -> exemption record (JSON)
    {p}:log:{B}      stream  a bucket's sequencing stream (the Merkle log's entries, app/integrator.py): one record
                     per check call, in the bucket of the call's first item; one per registry write to a record
                     whose subject is in the bucket (field r); one per node and 256 entries of a many-record write
                     (an import's chunk, field rs), in the bucket of its first entry
    {p}:logbase:{B}  string  the stream id of the last record archived and trimmed (`debar log archive`)
    {p}:ds:{B}:PSEUD list  the subject's decision locations, newest first (right to know; shown as external ids)
                     until `debar log archive` trims their records (then the archive keeps them)
    {p}:rh:{B}       hash  restriction or exemption id -> its registry writes, oldest first (its history,
                     GetRestriction), B the bucket of the record's subject: a stream id in {p}:log:{B}, or
                     "<stream id>/<index>/<bucket C>", entry <index> of a batch record in {p}:log:{C}
    {p}:replayed:{B} set   spool ids of fail-open decisions replayed into the log
    {p}:spooled:{B}  hash  spool id -> decision id
    {p}:r:{T}:N      hash  restriction id -> restriction record (msgpack array); T and N from the restriction id
    {p}:oplog        stream  operations on the whole store, one record each (a `debar rekey` run), field `e` holding
                     its log entry
    {p}:txt          hash  text ref -> text, "=" text -> ref (sources, legal bases and authorities repeat across many
                     records: they get short refs, see lua/texts.lua)
    {p}:rev          string  the data revision, bumped after every write
    {p}:imports      hash    import lines so far, by result (added, updated, unchanged, rejected)
    {p}:probe:{probe:T}  string  written by the health probe to learn that replicas confirm writes (T: a tag
                     that puts it on a given cluster node)
    {p}:rate:{rate:KEY}:W  string  items checked under KEY (a caller, or caller/principal when delegated) in
                     rate window W (see rate_counter.py)
    {p}:distinct:{distinct:H}:c:KEY  HyperLogLog  the subjects KEY checked or read in hour H (app/distinct.py)
    {p}:distinct:{distinct:H}:callers  set  the KEYs with a HyperLogLog in hour H; both kept two hours
B is 3 hex characters (4096 buckets, each with its own sequencing stream); N (one of INDEX_SPLIT, from the pseudonym's
last character) splits a bucket's index into small hashes that Redis keeps in its compact listpack encoding: at 10
million restrictions (~12 million subjects with principals) 4096 x 32 hashes hold ~90 subjects each. T is 3 base32
characters of the restriction id (32768 tags); N one of RECORD_SPLIT from the 4th, so that 10 million records make
hashes of ~150 (listpack up to 256). A caller's rate counters carry their own hash tag (never a subject
bucket's), so in Redis Cluster they spread by caller and never share a slot with check data.

The objection keys (ObjectionKeys) all share the objection log's hash tag, so that one script call writes a step's
record, index, dispute counts and log entry atomically (objections are filed by people, a few a day, so one slot is
plenty):

    {p}:objlog                   stream  every transition (a sequencing stream of the Merkle log)
    {{p}:objlog}:o:B             hash    objection id -> objection record (JSON); B from the objection id (the
                                         decision's bucket), so a decision's objection sits in one small hash
    {{p}:objlog}:by-decision     hash    decision id -> its objection id (one objection per decision)
    {{p}:objlog}:state:S         zset    objection ids in state S, scored by the deadline that matters in S
    {{p}:objlog}:disputes        hash    restriction id -> how many open objections dispute it

The subscription keys (WatchKeys). An owner's keys share the hash tag {w:OWNER}, so that one script call checks
its quota, stores its subscriptions and tells a change (compare-and-set on the outcome last told, then the append)
atomically; a subject's set lives in the subject's bucket, beside its index:

    {p}:wsubj:{B}:PSEUD          set     "<until> <subscription id> <owner>" of every subscription on the subject
                                         (expires with the last of them)
    {p}:wsub:{w:OWNER}:ID        hash    one subscription: subject ("<kind> <bucket> <pseudonym>"), measures,
                                         until, tag, created, and o:<measure> -> A or D, the outcome last told;
                                         expires at its until
    {p}:wsubs:{w:OWNER}          zset    the owner's subscription ids by until (its quota, its ownership)
    {p}:wchg:{w:OWNER}           stream  the changes told to the owner (trimmed past the retention)
    {p}:watch:due                zset    "<kind> <bucket> <pseudonym>" -> when to judge it: touched by a write
                                         (now), its next validity-window boundary, or a judge's lease
"""

from __future__ import annotations

from dataclasses import dataclass

from debar.sanction.domain.objections import ObjectionState, parse_objection_id

INDEX_SPLIT = 32
RECORD_SPLIT = 2
_BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_INDEX_PART = {c: str(i % INDEX_SPLIT) for i, c in enumerate(_BASE64URL)}
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_RECORD_PART = {c: str(i % RECORD_SPLIT) for i, c in enumerate(_BASE32)}


def index_part(pseudonym: str) -> str:
    last = pseudonym[-1]
    return _INDEX_PART.get(last) or str(ord(last) % INDEX_SPLIT)


def record_part(restriction_id: str) -> str:
    char = restriction_id[4:5] or "A"
    return _RECORD_PART.get(char) or str(ord(char) % RECORD_SPLIT)


# The longest life any debar writer gives a record claim (redis_store.claim_life_ms is at most this). A claim key
# without an expiry, or with a longer one, is none debar made (an insider's, which would hold the record's writes
# off for ever): the scripts disregard it (lua/lib/claims.lua).
CLAIM_CEILING_MS = 600_000


@dataclass(frozen=True)
class Keys:
    prefix: str = "debar"

    def index(self, bucket: str, pseudonym: str) -> str:
        return f"{self.prefix}:s:{{{bucket}}}:{index_part(pseudonym)}"

    def exemptions(self, bucket: str) -> str:
        return f"{self.prefix}:x:{{{bucket}}}"

    def log(self, bucket: str) -> str:
        return f"{self.prefix}:log:{{{bucket}}}"

    def log_base(self, bucket: str) -> str:
        """The stream id of the last record archived and trimmed: where the stream in Redis continues."""
        return f"{self.prefix}:logbase:{{{bucket}}}"

    def registry_history(self, bucket: str) -> str:
        """Restriction or exemption id -> the stream ids of its registry writes in `log(bucket)`."""
        return f"{self.prefix}:rh:{{{bucket}}}"

    def subject_decisions(self, bucket: str, pseudonym: str) -> str:
        return f"{self.prefix}:ds:{{{bucket}}}:{pseudonym}"

    def replayed(self, bucket: str) -> str:
        """Spool ids of fail-open decisions already replayed into the log (makes replay idempotent)."""
        return f"{self.prefix}:replayed:{{{bucket}}}"

    def spooled_ids(self, bucket: str) -> str:
        """Spool id -> the decision id its replay got."""
        return f"{self.prefix}:spooled:{{{bucket}}}"

    def restrictions(self, restriction_id: str) -> str:
        return f"{self.prefix}:r:{{{restriction_id[1:4]}}}:{record_part(restriction_id)}"

    def record_claim(self, record_key: str, record_id: str) -> str:
        """A write's claim on a record it stores after writing on other nodes (lua/claim.lua): in the record's slot.
        It lapses within CLAIM_CEILING_MS."""
        tag = record_key[record_key.index("{") : record_key.index("}") + 1]
        return f"{self.prefix}:rc:{tag}:{record_id}"

    @property
    def operations_log(self) -> str:
        """Runs that touch the whole store (`debar rekey`), sequenced for the Merkle log."""
        return f"{self.prefix}:oplog"

    @property
    def texts(self) -> str:
        return f"{self.prefix}:txt"

    @property
    def revision(self) -> str:
        return f"{self.prefix}:rev"

    @property
    def imports(self) -> str:
        return f"{self.prefix}:imports"

    def replication_probe(self, tag: str) -> str:
        """A counter the health probe writes to learn that replicas still confirm writes (one per cluster node:
        `tag` picks the slot)."""
        return f"{self.prefix}:probe:{{probe:{tag}}}"

    def rate(self, caller: str, window: int) -> str:
        """Items checked by `caller` in rate window number `window`."""
        return f"{self.prefix}:rate:{{rate:{caller}}}:{window}"

    def distinct(self, hour: int, caller: str) -> str:
        """A HyperLogLog of the subjects `caller` touched in hour number `hour` (see app/distinct.py)."""
        return f"{self.prefix}:distinct:{{distinct:{hour}}}:c:{caller}"

    def distinct_callers(self, hour: int) -> str:
        """The callers that have a distinct-subjects HyperLogLog in hour number `hour`."""
        return f"{self.prefix}:distinct:{{distinct:{hour}}}:callers"

    # -- patterns, for walks over every key of a kind (SCAN MATCH) --------------------------------------------

    def log_pattern(self) -> str:
        return f"{self.prefix}:log:*"

    def index_pattern(self) -> str:
        return f"{self.prefix}:s:*"

    def restrictions_pattern(self) -> str:
        return f"{self.prefix}:r:*"

    def exemptions_pattern(self) -> str:
        return f"{self.prefix}:x:*"

    def subject_decisions_pattern(self) -> str:
        return f"{self.prefix}:ds:*"


# Reading back a key such a walk found.


def hash_tag(key: str) -> str:
    """The hash tag of a key built here: the bucket of a subject's or a stream's key."""
    return key[key.index("{") + 1 : key.index("}")]


def decisions_pseudonym(key: str) -> str:
    """The pseudonym whose decision list `key` (Keys.subject_decisions) is."""
    return key.rsplit(":", 1)[1]


@dataclass(frozen=True)
class ObjectionKeys:
    prefix: str = "debar"

    @property
    def log(self) -> str:
        return f"{self.prefix}:objlog"

    @property
    def _tag(self) -> str:
        return f"{{{self.prefix}:objlog}}"  # the same slot as the log key itself

    def records(self, objection_id: str) -> str:
        return f"{self._tag}:o:{parse_objection_id(objection_id)}"

    @property
    def by_decision(self) -> str:
        return f"{self._tag}:by-decision"

    def state(self, state: ObjectionState) -> str:
        return f"{self._tag}:state:{state.value}"

    @property
    def disputes(self) -> str:
        return f"{self._tag}:disputes"


TILE_WIDTH = 256  # hashes per tile string (tlog-tiles' width)
TILE_LEVELS = 8  # every 8th level of the tree is stored (levels 0, 8, 16, ...), as tlog-tiles does


@dataclass(frozen=True)
class TreeKeys:
    """The Merkle tree over the sequenced log (adapters/tree_store.py), all in the `{tlog}` slot so that one script
    call commits a whole integration step:

        {p}:{tlog}:lease       string  the integrator holding the lease: its owner token (SET NX PX, renewed)
        {p}:{tlog}:state       hash    size, edge (tlog.compact serialization), root (hex)
        {p}:{tlog}:cursors     hash    stream -> the last record id integrated from it
        {p}:{tlog}:records     list    "<first leaf> <count> <stream> <record id>" per integrated record, in leaf
                                       order (the order verification rebuilds the tree in), from item `orderbase`:
                                       `debar log archive` moves the items before it to the archive folder
        {p}:{tlog}:orderbase   string  how many leaf-order items were moved to the archive (the list's first item
                                       is item number `orderbase`); also the archive run's cursor
        {p}:{tlog}:leaf        hash    "<stream> <record id>" -> its first leaf index; a record's field leaves with
                                       its record (`debar log archive`)
        {p}:{tlog}:unarchived  hash    "<stream> <record id>" -> its leaf-order item, for each record the archive
                                       run has passed (before `orderbase`) that was not archived then (a refusal
                                       kept, an objection step, a rekey run): what keeps its tile in Redis
        {p}:{tlog}:t:L:N       string  tile N of stored level L (L a multiple of 8): up to 256 node hashes of 32
                                       bytes, node index N * 256 + i at byte offset 32 * i (level 0: leaf hashes);
                                       a full level-0 tile whose leaves are all archived records leaves Redis
                                       for the archive folder (`debar log archive`)
        {p}:{tlog}:archived    string  bitmap: bit N set once level-0 tile N was moved to the archive
        {p}:{tlog}:checkpoint  string  the latest signed checkpoint with its cosignatures (GetCheckpoint)
    """

    prefix: str = "debar"

    @property
    def _tag(self) -> str:
        return f"{self.prefix}:{{tlog}}"

    @property
    def lease(self) -> str:
        return f"{self._tag}:lease"

    @property
    def state(self) -> str:
        return f"{self._tag}:state"

    @property
    def cursors(self) -> str:
        return f"{self._tag}:cursors"

    @property
    def records(self) -> str:
        return f"{self._tag}:records"

    @property
    def leaf(self) -> str:
        return f"{self._tag}:leaf"

    @property
    def order_base(self) -> str:
        return f"{self._tag}:orderbase"

    @property
    def unarchived(self) -> str:
        return f"{self._tag}:unarchived"

    def tile(self, level: int, tile: int) -> str:
        return f"{self._tag}:t:{level}:{tile}"

    @property
    def checkpoint(self) -> str:
        return f"{self._tag}:checkpoint"

    @property
    def archived(self) -> str:
        return f"{self._tag}:archived"

    def tile_pattern(self) -> str:
        return f"{self._tag}:t:*"


@dataclass(frozen=True)
class WatchKeys:
    prefix: str = "debar"

    def subject(self, bucket: str, pseudonym: str) -> str:
        return f"{self.prefix}:wsubj:{{{bucket}}}:{pseudonym}"

    def subscription(self, owner: str, subscription_id: str) -> str:
        return f"{self.prefix}:wsub:{{w:{owner}}}:{subscription_id}"

    def owned(self, owner: str) -> str:
        return f"{self.prefix}:wsubs:{{w:{owner}}}"

    def changes(self, owner: str) -> str:
        return f"{self.prefix}:wchg:{{w:{owner}}}"

    @property
    def due(self) -> str:
        return f"{self.prefix}:watch:due"

    def subject_pattern(self) -> str:
        return f"{self.prefix}:wsubj:*"

    def subscription_pattern(self) -> str:
        return f"{self.prefix}:wsub:*"

    @staticmethod
    def subject_pseudonym(key: str) -> str:
        """The pseudonym whose set `key` (WatchKeys.subject) is."""
        return key.rsplit(":", 1)[1]
