"""Redis key layout, designed for Redis Cluster: everything one check reads or writes for a subject carries the
subject's bucket as hash tag, so it lives in one slot and one script call covers it.

    {p}:s:{B}:N      hash  pseudonym -> packed index entries (restrictions reaching the subject, exemptions)
    {p}:x:{B}        hash  exemption id -> exemption record (JSON)
    {p}:log:{B}      stream  a hash-chained decision log: one record per check call, in the chain of the
                     bucket of the call's first item
    {p}:loghead:{B}  string  "<ms> <seq> <hash>" of the chain's last record
    {p}:ds:{B}:PSEUD list  the subject's decision ids, newest first (right to know)
    {p}:replayed:{B} set   spool ids of fail-open decisions replayed into the log
    {p}:spooled:{B}  hash  spool id -> decision id
    {p}:r:{T}        hash  restriction id -> restriction record (JSON); T from the restriction id
    {p}:txt          hash  text ref -> text (legal bases and authorities repeat across many records)
    {p}:rev          string  the data revision, bumped after every write
B is 3 hex characters (4096 buckets, each with its own decision chain); N one more hex character that splits a bucket's
index into small hashes Redis keeps in its compact encoding.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "debar"

    def index(self, bucket: str, pseudonym: str) -> str:
        return f"{self.prefix}:s:{{{bucket}}}:{pseudonym[-1]}"

    def exemptions(self, bucket: str) -> str:
        return f"{self.prefix}:x:{{{bucket}}}"

    def log(self, bucket: str) -> str:
        return f"{self.prefix}:log:{{{bucket}}}"

    def log_head(self, bucket: str) -> str:
        return f"{self.prefix}:loghead:{{{bucket}}}"

    def subject_decisions(self, bucket: str, pseudonym: str) -> str:
        return f"{self.prefix}:ds:{{{bucket}}}:{pseudonym}"

    def replayed(self, bucket: str) -> str:
        """Spool ids of fail-open decisions already replayed into the log (makes replay idempotent)."""
        return f"{self.prefix}:replayed:{{{bucket}}}"

    def spooled_ids(self, bucket: str) -> str:
        """Spool id -> the decision id its replay got."""
        return f"{self.prefix}:spooled:{{{bucket}}}"

    def restrictions(self, restriction_id: str) -> str:
        return f"{self.prefix}:r:{{{restriction_id[1:4]}}}"

    @property
    def texts(self) -> str:
        return f"{self.prefix}:txt"

    @property
    def revision(self) -> str:
        return f"{self.prefix}:rev"

    def log_pattern(self) -> str:
        return f"{self.prefix}:log:*"
