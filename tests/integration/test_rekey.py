"""Pseudonymisation key rotation without downtime: after the new key goes first in the ring, checks find records
under either key, new writes use the new key, and `debar rekey` moves everything to it."""

from __future__ import annotations

import subprocess
import sys
import time

import grpc
import redis as redis_client

from debar.local.embedded_redis import EmbeddedRedis
from debar.v1 import (
    common_pb2,
    decision_pb2,
    decision_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    sanction_pb2_grpc,
)
from tests.support.keys import log_verify_env
from tests.support.requests import (
    DAY,
    PERMIT_DOCUMENT,
    check_request,
    exemption_confirmed,
    impose_request,
    lift_confirmed,
    subject,
    ts,
)
from tests.support.servers import start_service
from tests.support.subjects import new_ric, new_uscc

OLD_RING, NEW_RING = (
    "k1:first-secret-at-least-32-bytes-long",
    "k2:second-secret-at-least-32-bytes-long,k1:first-secret-at-least-32-bytes-long",
)
ALLOW, DENY = common_pb2.OUTCOME_ALLOW, common_pb2.OUTCOME_DENY


def _cli(url: str, ring: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "debar.cli.main", "--redis-url", url, *args],
        capture_output=True, text=True, timeout=60,
        env={"DEBAR_PSEUDONYM_KEYS": ring, "PATH": "/usr/bin:/bin", **(env or {})},
    )  # fmt: skip


def _old_names(url: str) -> list[str]:
    """Everything in Redis still named by a pseudonym under the old key (index fields, decision lists)."""
    r = redis_client.Redis.from_url(url)
    found = [k.decode() for k in r.scan_iter(match="debar:ds:*") if b":k1." in k]
    for key in r.scan_iter(match="debar:s:*"):
        found += [f.decode() for f in r.hkeys(key) if f.startswith(b"k1.")]
    return found


def test_rotation_keeps_answers_right_and_rekey_moves_everything(tmp_path, logs_dir):
    server = EmbeddedRedis(tmp_path / "redis").start()
    env = {"DEBAR_REDIS_URL": server.url, "DEBAR_DATA_DIR": str(tmp_path), "DEBAR_PLAINTEXT": "true"}
    kept, lifted, company, representative, permitted, newcomer = (
        new_ric(), new_ric(), new_uscc(), new_ric(), new_ric(), new_ric()
    )  # fmt: skip
    service = start_service("sanction", {**env, "DEBAR_PSEUDONYM_KEYS": OLD_RING}, logs_dir)
    try:
        with grpc.insecure_channel(service.address) as channel:
            registry = registry_pb2_grpc.RegistryServiceStub(channel)
            checks = sanction_pb2_grpc.SanctionServiceStub(channel)
            registry.Impose(impose_request(kept))
            to_lift = registry.Impose(impose_request(lifted)).restriction.id
            registry.Impose(impose_request(company, principals=[(representative, common_pb2.ROLE_ACTUAL_CONTROLLER)]))
            registry.Impose(impose_request(permitted))
            permit = registry_pb2.GrantExemptionRequest(
                subject=subject(permitted),
                measure="RAIL_G_TRAIN",
                authority="Court",
                reason="exam",
                document_number=PERMIT_DOCUMENT,
            )
            permit.effective_from.CopyFrom(ts(time.time() - DAY))
            permit.effective_until.CopyFrom(ts(time.time() + DAY))
            exemption_confirmed(registry, permit)
            before = checks.Check(check_request(kept, "RAIL_G_TRAIN")).decision_id
    finally:
        service.stop()

    # The rotation: the new key goes first; the service restarts with the ring (rolling, in a cluster).
    service = start_service("sanction", {**env, "DEBAR_PSEUDONYM_KEYS": NEW_RING}, logs_dir)
    try:
        with grpc.insecure_channel(service.address) as channel:
            registry = registry_pb2_grpc.RegistryServiceStub(channel)
            checks = sanction_pb2_grpc.SanctionServiceStub(channel)
            decisions = decision_pb2_grpc.DecisionServiceStub(channel)

            def outcomes() -> list[int]:
                return [
                    checks.Check(check_request(number, "RAIL_G_TRAIN")).outcome
                    for number in (kept, lifted, representative, permitted, newcomer)
                ]

            new_record = registry.Impose(impose_request(newcomer)).restriction
            assert new_record.subject_pseudonym.startswith("k2.")  # new writes use the new key
            lift_confirmed(registry, to_lift, "paid")  # written mid-rotation
            assert outcomes() == [DENY, ALLOW, DENY, ALLOW, DENY]  # old data found through the previous key
            assert _old_names(server.url)

            rekeyed = _cli(server.url, NEW_RING, "rekey")
            assert rekeyed.returncode == 0, rekeyed.stderr
            assert "re-keyed to k2" in rekeyed.stdout
            assert not _old_names(server.url)
            assert outcomes() == [DENY, ALLOW, DENY, ALLOW, DENY]

            listed = registry.ListRestrictions(registry_pb2.ListRestrictionsRequest(subject=subject(kept)))
            assert [r.restriction.subject_pseudonym[:3] for r in listed.restrictions] == ["k2."]
            mine = decisions.ListDecisions(decision_pb2.ListDecisionsRequest(subject=subject(kept), page_size=100))
            assert before in [d.decision_id for d in mine.decisions]  # the person still sees the older decisions
    finally:
        service.stop()

    again = _cli(server.url, NEW_RING, "rekey")
    assert again.returncode == 0 and "0 index fields, 0 records, 0 exemptions, 0 decision lists" in again.stdout
    # Each run is a log entry of the operations stream, with what it moved and to which key.
    from debar.sanction.domain.log_entries import RekeyEntry

    runs = [RekeyEntry.decode(f[b"e"]) for _, f in redis_client.Redis.from_url(server.url).xrange("debar:oplog")]
    assert [(r.caller, r.key) for r in runs] == [("rekey", "k2"), ("rekey", "k2")]
    assert runs[0].counts["records"] > 0 and runs[1].counts["records"] == 0
    verified = _cli(server.url, NEW_RING, "log", "verify", env=log_verify_env(tmp_path))
    assert verified.returncode == 0, verified.stderr
    server.stop()


def test_a_rolling_rotation_keeps_every_replica_right_at_every_phase(tmp_path, logs_dir):
    """Replicas restart one by one, so two rings serve at once. Staged first (the new key read, not written), then
    current: at every step a restriction imposed through any replica denies on every replica, and `debar rekey`
    refuses while a staged ring may still be in service."""
    server = EmbeddedRedis(tmp_path / "redis").start()
    env = {"DEBAR_REDIS_URL": server.url, "DEBAR_DATA_DIR": str(tmp_path), "DEBAR_PLAINTEXT": "true"}
    staged = {"DEBAR_PSEUDONYM_KEYS": NEW_RING, "DEBAR_PSEUDONYM_STAGED": "k2"}
    phases = [  # the rings of the two replicas while the rollout is under way
        ({"DEBAR_PSEUDONYM_KEYS": OLD_RING}, staged),
        (staged, {"DEBAR_PSEUDONYM_KEYS": NEW_RING}),
        ({"DEBAR_PSEUDONYM_KEYS": NEW_RING}, {"DEBAR_PSEUDONYM_KEYS": NEW_RING}),
    ]
    restricted: list[str] = []
    try:
        for step, rings in enumerate(phases):
            replicas = [start_service("sanction", {**env, **ring}, logs_dir) for ring in rings]
            try:
                for replica in replicas:  # each replica imposes one, through its own ring
                    with grpc.insecure_channel(replica.address) as channel:
                        person = new_ric()
                        registry_pb2_grpc.RegistryServiceStub(channel).Impose(impose_request(person))
                        restricted.append(person)
                for replica in replicas:
                    with grpc.insecure_channel(replica.address) as channel:
                        checks = sanction_pb2_grpc.SanctionServiceStub(channel)
                        outcomes = [checks.Check(check_request(p, "RAIL_G_TRAIN")).outcome for p in restricted]
                        assert outcomes == [DENY] * len(restricted), (step, replica.port)
                        assert checks.Check(check_request(new_ric(), "RAIL_G_TRAIN")).outcome == ALLOW
            finally:
                for replica in replicas:
                    replica.stop()
            if step == 1:
                refused_staged = subprocess.run(
                    [sys.executable, "-m", "debar.cli.main", "--redis-url", server.url, "rekey"], capture_output=True,
                    text=True, timeout=60, env={**staged, "PATH": "/usr/bin:/bin"},
                )  # fmt: skip
                assert refused_staged.returncode == 2 and "staged" in refused_staged.stderr, refused_staged.stderr
        assert _cli(server.url, NEW_RING, "rekey").returncode == 0
        assert _old_names(server.url) == []
        replica = start_service("sanction", {**env, "DEBAR_PSEUDONYM_KEYS": NEW_RING}, logs_dir)
        try:
            with grpc.insecure_channel(replica.address) as channel:
                checks = sanction_pb2_grpc.SanctionServiceStub(channel)
                assert [checks.Check(check_request(p, "RAIL_G_TRAIN")).outcome for p in restricted] == [DENY] * 6
        finally:
            replica.stop()
    finally:
        server.stop()
