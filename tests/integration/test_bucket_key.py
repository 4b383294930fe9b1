"""The bucket a subject's data lives in (the hash tag of its keys, part of every decision id about it) comes from a
keyed hash: from an ID number alone nobody can tell which bucket, slot or decision ids are that person's."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import redis as redis_client

from debar.common.identifiers import IdKind, Placement, validate_identifier
from debar.sanction.adapters.keys import Keys
from debar.v1 import decision_pb2, registry_pb2
from tests.conftest import ON_CLUSTER
from tests.support.keys import TEST_BUCKET_KEY, where
from tests.support.requests import check_request, impose_request, subject
from tests.support.subjects import new_ric


def unkeyed_bucket(number: str) -> str:
    """What anyone could compute from an ID number before: the bucket as an unkeyed hash of the identifier."""
    return hashlib.sha256(f"bucket\0RIC:{number}".encode()).hexdigest()[:3]


def test_the_bucket_in_a_decision_id_cannot_be_computed_from_the_id_number(registry, checks, decisions, redis_server):
    people = [new_ric() for _ in range(8)]
    placement = Placement(TEST_BUCKET_KEY.encode())
    client = (redis_client.RedisCluster if ON_CLUSTER else redis_client.Redis).from_url(redis_server.url)
    try:
        for number in people:
            registry.Impose(impose_request(number))
        buckets = []
        for number in people:
            refusal = checks.Check(check_request(number, "RAIL_G_TRAIN"))
            bucket = where(refusal.decision_id).bucket
            buckets.append(bucket)
            # The service's own bucket is the keyed one, and under it the decision is found again: by id, in the
            # person's listing, in the person's decision list.
            assert bucket == placement.bucket(validate_identifier(IdKind.RIC, number))
            logged = decisions.GetDecision(decision_pb2.GetDecisionRequest(decision_id=refusal.decision_id))
            assert logged.outcome == refusal.outcome
            listed = decisions.ListDecisions(decision_pb2.ListDecisionsRequest(subject=subject(number)))
            assert [d.decision_id for d in listed.decisions] == [refusal.decision_id]
            found = registry.ListRestrictions(registry_pb2.ListRestrictionsRequest(subject=subject(number)))
            pseudonym = found.restrictions[0].restriction.subject_pseudonym
            kept = client.lrange(Keys().subject_decisions(bucket, pseudonym), 0, -1)
            assert kept == [str(where(refusal.decision_id)).encode()]  # the list keeps the location, never shown
        # The attack: from the ID number alone, the bucket in every decision id and key. One in 4096 may match by
        # chance; eight out of eight did before.
        guessed = [unkeyed_bucket(number) == bucket for number, bucket in zip(people, buckets, strict=True)]
        assert sum(guessed) <= 1, guessed
    finally:
        client.close()


def test_another_bucket_key_places_the_same_person_elsewhere():
    person = validate_identifier(IdKind.RIC, new_ric())
    ours, theirs = Placement(TEST_BUCKET_KEY.encode()), Placement(b"another-bucket-key-of-32-bytes-or-more")
    others = [validate_identifier(IdKind.RIC, new_ric()) for _ in range(8)]
    assert sum(ours.bucket(p) == theirs.bucket(p) for p in [person, *others]) <= 1


def test_a_short_bucket_key_refuses_to_start(tmp_path):
    env = {**os.environ, "DEBAR_BUCKET_KEY": "short", "DEBAR_DATA_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "debar.cli.main", "serve", "sanction"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "DEBAR_BUCKET_KEY must be at least 32 bytes, got 5" in done.stderr and "short" not in done.stderr
