"""Which decision list each decision of a stream record is in: its subject's bucket, named by the record's `sb`
field when the check script wrote one (subjects of other buckets than the stream's), else the stream's."""

from __future__ import annotations

from debar.sanction.domain.log_records import DECISION_FS, DECISION_SEP, LogEntry, decisions_of, subject_buckets


def _record(subjects: int, **extra: str) -> LogEntry:
    one = DECISION_FS.join(("caller", "7", "RIC", "k1.p", "RAIL_G_TRAIN", "ALLOW", "1764250000", "", ""))
    return LogEntry("1764250000000-0", {"cat": "v1", "d": DECISION_SEP.join([one] * subjects), **extra})


def test_a_batch_record_names_each_subjects_bucket():
    assert subject_buckets(_record(3, sb="a3f0c1ffe"), "a3f") == ["a3f", "0c1", "ffe"]


def test_without_sb_every_subject_is_in_the_streams_bucket():
    assert subject_buckets(_record(2), "a3f") == ["a3f", "a3f"]


def test_an_sb_not_of_one_bucket_a_decision_is_not_taken():
    assert subject_buckets(_record(2, sb="a3f0c1ffe"), "a3f") == ["a3f", "a3f"]


def test_a_registry_record_holds_no_decision():
    assert subject_buckets(LogEntry("1-0", {"r": "entry"}), "a3f") == []


def test_a_registry_record_given_decisions_holds_none():
    """No writer puts a `d` beside a registry write (an insider's, on an integrated record: it changes no entry)."""
    for field in ("r", "rs"):
        forged = _record(1, **{field: "entry"})
        assert decisions_of(forged) == [] and subject_buckets(forged, "a3f") == []
