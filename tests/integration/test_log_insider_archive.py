"""An insider with write access to Redis but no key against what `debar log archive` leaves in Redis: the bitmap of
archived level-0 tiles (`{tlog}:archived`, lua/tree_archive.lua) and a decision record's field `sb` (the bucket of
each item's subject, outside the log's entries, which the archive uses to take archived decisions off their
subjects' lists). Played on a real sanction service's Redis (single, and the 3-master cluster with
DEBAR_TEST_REDIS=cluster) on its own key prefix; `debar log verify` is run as an auditor would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest

from debar.sanction.adapters.keys import Keys, TreeKeys
from debar.v1 import common_pb2, decision_pb2, decision_pb2_grpc, registry_pb2_grpc, sanction_pb2, sanction_pb2_grpc
from tests.integration.test_log_insider_chunks import broken, debar, import_feed
from tests.integration.test_tlog_attacks import LogSystem, drop_from_decision_lists, records_of, system, verify
from tests.support.keys import where
from tests.support.log import receipt_when_ready
from tests.support.requests import check_request, impose_request, subject
from tests.support.servers import wait_for
from tests.support.subjects import new_ric

__all__ = ["system"]

TIMEOUT = 30
READER = [("x-debar-caller", "reviewer:li")]
TILE = 256


def settled(system: LogSystem) -> int:
    """Until the tree takes in every record and a checkpoint covers it; its size."""
    r = system.redis()
    keys = TreeKeys(system.prefix)

    def done() -> bool:
        size, signed = r.hget(keys.state, "size"), r.hget(keys.checkpoint, "size")
        pending = sum(
            1
            for s in system.streams()
            for sid, _ in records_of(r, s)
            if (c := r.hget(keys.cursors, s)) is None
            or tuple(map(int, sid.split(b"-"))) > tuple(map(int, c.split(b"-")))
        )
        return pending == 0 and size is not None and size == signed

    assert wait_for(done, timeout_s=90, interval_s=0.5)
    return int(r.hget(keys.state, "size"))


def code_of(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value.code(), raised.value.details() or ""


# -- 2. the archived-tiles bitmap ----------------------------------------------------------------------------


def test_the_archived_tiles_bitmap_rewritten(system: LogSystem, logs_dir: Path, tmp_path: Path):
    r = system.redis()
    keys = TreeKeys(system.prefix)
    archive = tmp_path / "archive"
    service = system.start(logs_dir)
    import_feed(system, tmp_path, 3 * TILE)
    size = settled(system)
    done = debar(system.env, "log", "archive", "--dir", str(archive), "--keep-days", "0")
    assert done.returncode == 0, done.stderr
    moved = sorted(i for i in range(size // TILE) if r.getbit(keys.archived, i))
    assert moved, done.stdout
    refusal = proven_tile = None
    with grpc.insecure_channel(service.address) as channel:
        decisions = decision_pb2_grpc.DecisionServiceStub(channel)
        checks = sanction_pb2_grpc.SanctionServiceStub(channel)
        for decision_id in system.refused:  # kept in Redis: their restrictions have no end
            proof = receipt_when_ready(decisions, decision_id)
            if proof.leaf_index // TILE not in moved and proof.leaf_index // TILE < size // TILE:
                refusal, proven_tile = decision_id, proof.leaf_index // TILE
                break
        assert refusal is not None and proven_tile is not None, "no kept refusal in a full tile"
        head = decisions.GetCheckpoint(decision_pb2.GetCheckpointRequest(), metadata=READER, timeout=TIMEOUT)

        def consistency(from_size: int) -> Any:
            return decisions.GetConsistencyProof(
                decision_pb2.GetConsistencyProofRequest(from_size=from_size, to_size=head.size), metadata=READER,
                timeout=TIMEOUT,
            )  # fmt: skip

        # A bit cleared on an archived tile: the proof needing it still says archived, never a wrong proof or an
        # internal error (the tile is neither in Redis nor marked).
        r.setbit(keys.archived, moved[0], 0)
        code, details = code_of(lambda: consistency(moved[0] * TILE + 100))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and "archive" in details, (code, details)
        r.setbit(keys.archived, moved[0], 1)

        # A kept refusal's tile marked archived and deleted (evidence hidden, receipts denied): the proof is
        # refused, verify names the tile, and the integrator goes on.
        hidden = r.get(keys.tile(0, proven_tile))
        r.setbit(keys.archived, proven_tile, 1)
        r.delete(keys.tile(0, proven_tile))
        code, details = code_of(
            lambda: decisions.GetDecisionProof(
                decision_pb2.GetDecisionProofRequest(decision_id=refusal), metadata=READER, timeout=TIMEOUT
            )
        )
        assert code == grpc.StatusCode.FAILED_PRECONDITION, (code, details)
        later = checks.Check(check_request(new_ric(), "RAIL_G_TRAIN"), timeout=TIMEOUT).decision_id
        receipt_when_ready(decisions, later)
    system.stop()
    stderr = broken(verify(system.env, "--archive", str(archive)))
    assert f"tile {proven_tile} deleted" in stderr, stderr
    r.set(keys.tile(0, proven_tile), hidden)
    r.setbit(keys.archived, proven_tile, 0)
    restored = verify(system.env, "--archive", str(archive))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    # Without the archive (the leaf order and tiles moved out of Redis) verify cannot pass, whatever the bitmap says.
    r.setbit(keys.archived, moved[0], 0)
    broken(verify(system.env))


# -- 3. a decision record's `sb` ------------------------------------------------------------------------------


def listed(decisions: Any, number: str) -> list[str]:
    request = decision_pb2.ListDecisionsRequest(subject=subject(number), page_size=100)
    return [d.decision_id for d in decisions.ListDecisions(request, metadata=READER, timeout=TIMEOUT).decisions]


@pytest.mark.parametrize("how", ["sb-rewritten", "refusal-made-an-allow"])
def test_archive_cannot_be_made_to_drop_a_kept_refusal_unnoticed(
    system: LogSystem, logs_dir: Path, tmp_path: Path, how: str
):
    """`sb` names only which list an archived decision is taken off; the item taken off is that decision's own
    location, so a rewritten `sb` can miss (an archived decision stays listed) but never take another decision
    off. Making a kept refusal archivable means changing its entry, which verify names."""
    r = system.redis()
    archive = tmp_path / "archive"
    service = system.start(logs_dir)
    restricted, people = new_ric(), [new_ric() for _ in range(30)]
    with grpc.insecure_channel(service.address) as channel:
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        checks = sanction_pb2_grpc.SanctionServiceStub(channel)
        decisions = decision_pb2_grpc.DecisionServiceStub(channel)
        registry.Impose(impose_request(restricted, measures=["HOTEL_STAR_RATED"]), timeout=TIMEOUT)  # no end
        kept = checks.Check(check_request(restricted, "HOTEL_STAR_RATED"), timeout=TIMEOUT)
        assert kept.outcome == common_pb2.OUTCOME_DENY
        batch = sanction_pb2.BatchCheckRequest(items=[check_request(p, "RAIL_G_TRAIN") for p in [*people, restricted]])
        batched = [x.response.decision_id for x in checks.BatchCheck(batch, timeout=TIMEOUT).results]
        receipt_when_ready(decisions, kept.decision_id)
        for decision_id in batched:
            receipt_when_ready(decisions, decision_id)
        assert kept.decision_id in listed(decisions, restricted)
        settled(system)
        edited = 0
        for stream in system.streams():
            for sid, fields in records_of(r, stream):
                if how == "sb-rewritten" and b"sb" in fields:
                    sb = fields[b"sb"]
                    rotated = sb[3:] + sb[:3]  # each item named another item's bucket
                    edited += 1
                    _rewrite(r, stream, sid, {**fields, b"sb": rotated if rotated != sb else b"abc" * (len(sb) // 3)})
                if (
                    how == "refusal-made-an-allow"
                    and b"\x1cDENY\x1c" in fields.get(b"d", b"")
                    and b"HOTEL" in fields[b"d"]
                ):
                    edited += 1
                    _rewrite(r, stream, sid, {**fields, b"d": _an_allow(fields[b"d"])})
        assert edited, "nothing to edit"
        done = debar(system.env, "log", "archive", "--dir", str(archive), "--keep-days", "0")
        assert done.returncode == 0, done.stderr
        still = listed(decisions, restricted)
    system.stop()
    audit = verify(system.env, "--archive", str(archive))
    if how == "sb-rewritten":
        assert kept.decision_id in still, still
        assert audit.returncode == 0, audit.stdout + audit.stderr  # `sb` is outside the entries
    else:
        assert kept.decision_id not in still  # archived as the allow it was made to say
        assert "does not hash to the stored leaf" in broken(audit) or "root" in audit.stderr, audit.stderr


def _an_allow(packed: bytes) -> bytes:
    """Every refusal of a record's field d made an allow with no grounds (the archive keeps a decision that found
    restrictions while they last, whatever its outcome)."""
    out = []
    for d in packed.split(b"\x1d"):
        fields = d.split(b"\x1c")
        if len(fields) == 9 and fields[5] == b"DENY":
            fields[5], fields[7] = b"ALLOW", b""
        out.append(b"\x1c".join(fields))
    return b"\x1d".join(out)


def _rewrite(r: Any, stream: str, record_id: bytes, fields: dict[bytes, bytes]) -> None:
    records = records_of(r, stream)
    r.delete(stream)
    for sid, f in records:
        r.xadd(stream, fields if sid == record_id else f, id=sid)


def test_a_refusal_taken_off_its_subjects_decision_list_is_detected(system: LogSystem):
    """The direct way to what a forged `sb` cannot do: LREM the refusal's location from the person's list. Nothing
    under the tree changes, but ListDecisions and the console's person page no longer show it; verify holds every
    decision in Redis to its subject's list."""
    decision_id = system.refused[0]
    address = where(decision_id)
    drop_from_decision_lists(system, decision_id)
    stderr = broken(verify(system.env))
    assert f"record {address.stream_id} of {system.prefix}:log:{{{address.bucket}}}, decision {address.index}" in (
        stderr
    ), stderr
    assert "on no decision list of its subject" in stderr


def test_another_persons_refusal_put_on_a_decision_list_is_not_listed_as_theirs(system: LogSystem, logs_dir: Path):
    """The other way round: LPUSH a genuine refusal's location onto another person's decision list. Verify holds
    every decision to its subject's list, not every list item to its subject; ListDecisions took the list as it
    was and showed the person someone else's refusal (its grounds: the other's restriction, court and case) as
    theirs. It now lists only decisions about the subject asked about."""
    restricted, other = new_ric(), new_ric()
    service = system.start(logs_dir)
    with grpc.insecure_channel(service.address) as channel:
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        checks = sanction_pb2_grpc.SanctionServiceStub(channel)
        decisions = decision_pb2_grpc.DecisionServiceStub(channel)
        registry.Impose(impose_request(restricted), timeout=TIMEOUT)
        refusal = checks.Check(check_request(restricted, "RAIL_G_TRAIN"), timeout=TIMEOUT)
        assert refusal.outcome == common_pb2.OUTCOME_DENY
        own = checks.Check(check_request(other, "RAIL_G_TRAIN"), timeout=TIMEOUT).decision_id
        shown = decisions.GetDecision(
            decision_pb2.GetDecisionRequest(decision_id=own), metadata=READER, timeout=TIMEOUT
        )
        theirs = where(own)
        foreign = where(refusal.decision_id)
        system.redis().lpush(
            Keys(system.prefix).subject_decisions(theirs.bucket, shown.subject_pseudonym), str(foreign)
        )
        assert listed(decisions, other) == [own]
        assert refusal.decision_id in listed(decisions, restricted)
