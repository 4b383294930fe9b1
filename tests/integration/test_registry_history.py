"""Every registry write is attributed and kept (issue 11): who, when, before and after, into the tamper-evident
log (issue 10), in the same script call as the write; GetRestriction shows the history, and an Impose that
shortens a restriction or drops a measure says so."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

from debar.sanction.adapters.keys import Keys
from debar.sanction.adapters.redis_client import make_client
from debar.sanction.adapters.sequenced_log import RedisSequencedLog
from debar.sanction.domain.decision_ids import DecisionIds
from debar.sanction.domain.log_entries import EntryKind, RegistryEntry, decode
from debar.sanction.domain.model import restriction_id
from debar.v1 import registry_pb2
from tests.conftest import ON_CLUSTER
from tests.support.keys import TEST_BUCKET_KEY
from tests.support.requests import (
    DAY,
    LIFT_DOCUMENT,
    PERMIT_DOCUMENT,
    SECOND_REGISTRY,
    impose_request,
    permit_confirmation,
    subject,
)
from tests.support.subjects import new_ric

CLERK = (("x-debar-caller", "clerk:wang"),)
WEAKENABLE = "railway_passenger_credit"  # lift_needs_confirmation false


def _fields(change: registry_pb2.RegistryChange, side: str) -> dict[str, str]:
    return {f.name: f.value for f in getattr(change, side)}


def test_an_impose_that_shortens_or_drops_a_measure_says_so_and_every_write_names_its_caller(registry, redis_server):
    person = new_ric()
    end = time.time() + 300 * DAY
    # A source whose lifts need no second identity: an Impose may weaken its records (for the others it is refused:
    # test_four_eyes.py), and says so.
    first = impose_request(person, source=WEAKENABLE, measures=["RAIL_G_TRAIN", "AIR_TRAVEL"], end=end)
    created = registry.Impose(first, metadata=CLERK).restriction
    # The same record re-sent: shorter, one measure fewer (an upsert that once did this silently).
    second = registry_pb2.ImposeRequest()
    second.CopyFrom(first)
    del second.measures[:]
    second.measures.append("RAIL_G_TRAIN")
    second.effective_until.seconds = int(end - 200 * DAY)
    registry.Impose(second, metadata=(("x-debar-caller", "clerk:zhao"),))
    registry.Impose(second, metadata=CLERK)  # unchanged: no write, no entry
    lift = registry_pb2.LiftRequest(restriction_id=created.id, reason="debt paid", document_number=LIFT_DOCUMENT)
    registry.Lift(lift, metadata=CLERK)

    history = list(registry.GetRestriction(registry_pb2.GetRestrictionRequest(restriction_id=created.id)).history)
    assert [(h.action, h.caller) for h in history] == [
        ("impose", "clerk:wang"), ("impose", "clerk:zhao"), ("lift", "clerk:wang"),
    ]  # fmt: skip
    made, shortened, lifted = history
    assert list(made.changed) == ["created"] and _fields(made, "after")["measures"] == "RAIL_G_TRAIN AIR_TRAVEL"
    assert not made.before
    assert list(shortened.changed)[:2] == ["shortened", "measures_dropped:AIR_TRAVEL"]
    assert _fields(shortened, "before") == {"measures": "RAIL_G_TRAIN AIR_TRAVEL", "effective_until": str(int(end))}
    assert _fields(shortened, "after") == {"measures": "RAIL_G_TRAIN", "effective_until": str(int(end - 200 * DAY))}
    assert "lifted" in lifted.changed and lifted.document_number == LIFT_DOCUMENT
    assert lifted.reason == "debt paid"
    assert all(h.at.seconds > 0 and h.record_id for h in history)
    assert [h.record_id for h in history] == sorted(h.record_id for h in history)

    # Each is a sequenced entry of the subject's bucket stream, read by the integrator like a decision.
    async def entries() -> list[bytes]:
        log = RedisSequencedLog(
            make_client(redis_server.url, cluster=ON_CLUSTER, timeout_s=5, connections=4), Keys(),
            DecisionIds.for_bucket_key(TEST_BUCKET_KEY),
        )  # fmt: skip
        found = []
        for h in history:
            for s in await log.streams():
                record = await log.read(s, h.record_id)
                if record is not None and record.entries and decode(record.entries[0]).kind is EntryKind.REGISTRY:
                    entry = RegistryEntry.decode(record.entries[0])
                    if entry.target == created.id:
                        found.append(record.entries[0])
        return found

    logged = [RegistryEntry.decode(e) for e in asyncio.run(entries())]
    assert [(e.action, e.caller, e.target) for e in logged] == [(h.action, h.caller, created.id) for h in history]
    assert logged[0].subject == created.subject_pseudonym


async def _registry_entries_of(redis_server, target: str) -> list[RegistryEntry]:  # type: ignore[no-untyped-def]
    """The log's registry entries about `target` (a restriction or permit id), in stream order."""
    client = make_client(redis_server.url, cluster=ON_CLUSTER, timeout_s=5, connections=4)
    log = RedisSequencedLog(client, Keys(), DecisionIds.for_bucket_key(TEST_BUCKET_KEY))
    out = []
    for stream in await log.streams():
        for record in await log.read_after(stream, "", 100_000):
            for e in record.entries:
                if decode(e).kind is EntryKind.REGISTRY and RegistryEntry.decode(e).target == target:
                    out.append(RegistryEntry.decode(e))
    await client.aclose()
    return out


def test_a_permit_granted_alone_then_confirmed_over_a_later_court_order_is_logged_as_it_happened(
    registry, redis_server
):
    """Granted by one clerk (in force: nothing restricted the person), then a court order naming its measure, then
    another clerk's confirmation: the permit's entries name both, the second says `confirmed`."""
    person = new_ric()
    now = int(time.time())
    request = registry_pb2.GrantExemptionRequest(
        subject=subject(person), measure="RAIL_TICKET_BAN", authority="Court", reason="treatment",
        document_number=PERMIT_DOCUMENT,
    )  # fmt: skip
    request.effective_from.seconds, request.effective_until.seconds = now - DAY, now + DAY
    granted = registry.GrantExemption(request, metadata=CLERK).exemption
    registry.Impose(impose_request(person, measures=["RAIL_TICKET_BAN"]), metadata=CLERK)
    confirm = permit_confirmation(subject(person), granted.id, granted)
    registry.ConfirmExemption(confirm, metadata=SECOND_REGISTRY)
    entries = asyncio.run(_registry_entries_of(redis_server, granted.id))
    assert [(e.action, e.caller, e.changed) for e in entries] == [
        ("grant_exemption", "clerk:wang", ("created",)), ("confirm_exemption", "clerk:zhao", ("confirmed",)),
    ]  # fmt: skip
    assert dict(entries[1].after) == {"confirmed_by": "clerk:zhao"}


def test_permits_are_logged_with_who_granted_and_confirmed_them(registry, redis_server):
    person = new_ric()
    registry.Impose(impose_request(person), metadata=CLERK)
    now = int(time.time())
    request = registry_pb2.GrantExemptionRequest(
        subject=subject(person), measure="RAIL_G_TRAIN", authority="Court", reason="funeral",
        document_number=PERMIT_DOCUMENT,
    )  # fmt: skip
    request.effective_from.seconds, request.effective_until.seconds = now, now + DAY
    granted = registry.GrantExemption(request, metadata=CLERK).exemption
    [entry] = asyncio.run(_registry_entries_of(redis_server, granted.id))
    assert (entry.action, entry.caller, entry.changed[0]) == ("grant_exemption", "clerk:wang", "created")
    assert dict(entry.after)["reason"] == "funeral" and entry.document_number == PERMIT_DOCUMENT


def test_a_lift_asked_and_confirmed_is_two_entries_naming_both_identities(registry):
    created = registry.Impose(impose_request(new_ric()), metadata=CLERK).restriction  # court_consumption_order
    lift = registry_pb2.LiftRequest(restriction_id=created.id, reason="debt paid", document_number=LIFT_DOCUMENT)
    registry.Lift(lift, metadata=CLERK)
    confirm = registry_pb2.ConfirmLiftRequest(restriction_id=created.id, document_number=LIFT_DOCUMENT)
    registry.ConfirmLift(confirm, metadata=SECOND_REGISTRY)
    history = list(registry.GetRestriction(registry_pb2.GetRestrictionRequest(restriction_id=created.id)).history)
    assert [(h.action, h.caller) for h in history] == [
        ("impose", "clerk:wang"), ("lift", "clerk:wang"), ("confirm_lift", "clerk:zhao"),
    ]  # fmt: skip
    asked, confirmed = history[1:]
    assert "lift_pending" in asked.changed and asked.document_number == LIFT_DOCUMENT
    assert {"lifted", "lift_confirmed"} <= set(confirmed.changed)


def test_an_imported_chunk_is_one_log_record_and_each_restriction_shows_its_own_entry(registry, service_env, tmp_path):
    """An import logs one sequenced record per chunk (per node on a cluster), holding each restriction's own entry:
    GetRestriction still shows every imported record's creation, attributed to the import, with its fields."""
    people = [new_ric() for _ in range(12)]
    tag = new_ric()[-6:]
    feed = tmp_path / "feed.jsonl"
    feed.write_text(
        "".join(
            json.dumps({
                "source": "court_consumption_order", "source_id": f"H-{tag}-{i}",
                "subject": {"id_type": "RIC", "id": number}, "legal_basis": "SPC Provisions, Art. 3",
                "authority": "Beijing Chaoyang District People's Court", "case_number": f"(2025) H {tag} {i}",
                "effective_from": "2025-01-01",
            }) + "\n"
            for i, number in enumerate(people)
        )
    )  # fmt: skip
    imported = subprocess.run(
        [sys.executable, "-m", "debar.cli.main", "import", str(feed), "--quiet"],
        capture_output=True, text=True, timeout=120, env={**os.environ, **service_env},
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    assert "added 12" in imported.stdout
    records = set()
    for i in range(len(people)):
        rid = restriction_id("court_consumption_order", f"H-{tag}-{i}")
        found = registry.GetRestriction(registry_pb2.GetRestrictionRequest(restriction_id=rid), metadata=CLERK)
        [made] = found.history
        assert (made.action, made.caller, list(made.changed)) == ("impose", "import", ["created"])
        after = _fields(made, "after")
        assert after["source_id"] == f"H-{tag}-{i}" and after["case_number"] == f"(2025) H {tag} {i}"
        assert after["subject"] == found.subject_pseudonym  # the batch keeps it as 0: expanded back
        records.add(made.record_id)
    assert len(records) <= (3 if ON_CLUSTER else 1)  # one record per node, not one per restriction


def test_another_restrictions_write_put_in_a_restrictions_history_is_not_shown(registry, redis_server):
    """A Redis insider (no key) adds another restriction's write (its stream id) to a restriction's history tokens
    (`debar:rh:{B}`, outside the log): GetRestriction showed that write, its clerk, action, before and after, as
    this restriction's. A history shows only entries about the restriction asked about."""
    import redis as redis_client

    person = new_ric()
    one = registry.Impose(impose_request(person, measures=["RAIL_G_TRAIN"]), metadata=CLERK).restriction
    other = registry.Impose(impose_request(person, measures=["AIR_TRAVEL"]), metadata=CLERK).restriction
    r = (redis_client.RedisCluster if ON_CLUSTER else redis_client.Redis).from_url(redis_server.url)
    try:
        [key] = [k for k in r.scan_iter(match="debar:rh:*", count=1000) if r.hexists(k, one.id)]
        r.hset(key, one.id, r.hget(key, one.id) + b" " + r.hget(key, other.id))
    finally:
        r.close()
    history = registry.GetRestriction(registry_pb2.GetRestrictionRequest(restriction_id=one.id)).history
    assert [c.action for c in history] == ["impose"], history
