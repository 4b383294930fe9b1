"""Builds the sanction core (store, catalogue, resolver, checker, registry) from settings. Used by the server's
wiring and by the CLI commands that write directly (import)."""

from __future__ import annotations

from dataclasses import dataclass

from debar.common.circuit import CircuitBreaker
from debar.common.identifiers import Pseudonymiser, parse_keys
from debar.common.settings import Settings
from debar.sanction.adapters.decision_log import RedisDecisionLog
from debar.sanction.adapters.file_spool import FileSpool, spool_folder
from debar.sanction.adapters.keys import Keys
from debar.sanction.adapters.objection_store import RedisObjectionStore
from debar.sanction.adapters.rate_counter import RedisRateCounter
from debar.sanction.adapters.redis_client import make_client
from debar.sanction.adapters.redis_store import RedisStore
from debar.sanction.app.checker import Checker, CheckObserver, RevisionFloor
from debar.sanction.app.coalescer import CoalescingDecider
from debar.sanction.app.decision_reader import DecisionReader
from debar.sanction.app.failopen import FailOpen, SpoolReplay, SpoolStats
from debar.sanction.app.objections import Objections
from debar.sanction.app.registry import Registry
from debar.sanction.domain.catalogue import Catalogue, load_default_catalogue
from debar.sanction.domain.subjects import SubjectResolver


@dataclass
class Core:
    store: RedisStore
    catalogue: Catalogue
    resolver: SubjectResolver
    floor: RevisionFloor
    checker: Checker
    registry: Registry
    decision_log: RedisDecisionLog
    decisions: DecisionReader
    objection_store: RedisObjectionStore
    objections: Objections
    rate_counter: RedisRateCounter
    spool_replay: SpoolReplay

    async def close(self) -> None:
        await self.store.close()


def build_core(settings: Settings, redis_url: str, observer: CheckObserver | None = None) -> Core:
    """`observer`: told of every decision (the server's metrics)."""
    client = make_client(
        redis_url, cluster=settings.redis_cluster, timeout_s=settings.redis_timeout_s,
        connections=settings.redis_connections,
    )  # fmt: skip
    keys = Keys(settings.redis_prefix)
    breaker = CircuitBreaker()  # one per Redis: every adapter that talks to it fails fast together
    catalogue = load_default_catalogue()
    store = RedisStore(client, keys, breaker, catalogue)
    decision_log = RedisDecisionLog(client, keys, breaker)
    resolver = SubjectResolver(Pseudonymiser(parse_keys(settings.pseudonym_keys), settings.pseudonym_staged))
    floor = RevisionFloor(store)
    registry = Registry(store, catalogue, resolver, floor)
    decisions = DecisionReader(decision_log, store, resolver)
    objection_store = RedisObjectionStore(client, keys, breaker)
    spool = FileSpool(spool_folder(settings.data_dir, redis_url, settings.redis_prefix), catalogue)
    spool_stats = SpoolStats()
    return Core(
        store=store,
        catalogue=catalogue,
        resolver=resolver,
        floor=floor,
        checker=Checker(
            store,
            catalogue,
            resolver,
            floor,
            decider=CoalescingDecider(store, catalogue.version),
            fail_open=FailOpen(spool, spool_stats),
            observer=observer,
        ),
        registry=registry,
        decision_log=decision_log,
        decisions=decisions,
        objection_store=objection_store,
        objections=Objections(objection_store, decisions, registry, catalogue),
        rate_counter=RedisRateCounter(client, keys),
        spool_replay=SpoolReplay(spool, store, spool_stats, catalogue.version),
    )
