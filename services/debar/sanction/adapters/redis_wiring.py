"""Every adapter of the sanction core on one Redis, and the files kept beside it (the fail-open spool, the log
archive): the one place that builds them, for the server and every `debar` command that works on Redis."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from debar.common.circuit import CircuitBreaker
from debar.common.identifiers import Pseudonymiser, parse_keys
from debar.common.settings import Settings, sentinel_addresses
from debar.sanction.adapters.checkpoint_dir import DirectoryCheckpoints
from debar.sanction.adapters.decision_log import RedisDecisionLog
from debar.sanction.adapters.file_archive import FileArchive
from debar.sanction.adapters.file_spool import FileSpool, spool_folder
from debar.sanction.adapters.keys import Keys, TreeKeys, WatchKeys
from debar.sanction.adapters.objection_store import RedisObjectionStore
from debar.sanction.adapters.rate_counter import RedisRateCounter
from debar.sanction.adapters.redis_client import Lanes, lane_count, make_client
from debar.sanction.adapters.redis_store import RedisStore, claim_life_ms
from debar.sanction.adapters.rekey_store import RedisRekey
from debar.sanction.adapters.replication import Replication
from debar.sanction.adapters.sealing import Sealer
from debar.sanction.adapters.sequenced_log import RedisSequencedLog
from debar.sanction.adapters.subject_tally import RedisSubjectTally
from debar.sanction.adapters.tree_store import RedisTreeStore
from debar.sanction.adapters.watch_store import RedisWatchStore, change_key
from debar.sanction.app.ports import Adapters
from debar.sanction.domain.catalogue import Catalogue
from debar.sanction.domain.decision_ids import DecisionIds
from debar.sanction.domain.decision_seals import DecisionSealer


def _current_pseudonym(settings: Settings) -> Callable[[str], str]:
    """A stored pseudonym's name under the ring's current key (where `debar rekey` moved its decision list)."""
    pseudonymiser = Pseudonymiser(parse_keys(settings.pseudonym_keys), settings.pseudonym_staged)

    def current(pseudonym: str) -> str:
        try:
            return pseudonymiser.forward(pseudonym)
        except ValueError:  # under a key no longer in the ring: nothing moved it
            return pseudonym

    return current


def redis_adapters(
    settings: Settings, redis_url: str, catalogue: Catalogue, archive_dir: Path | None = None
) -> Adapters:
    """One client and one circuit breaker for all of them (the Merkle log's adapters have their own): every adapter
    that talks to this Redis fails fast together, and one Replication: every write they acknowledge waits for its
    replicas. No connection is opened until the first call. `redis_url`: settings.redis_location, or the embedded
    server's URL. `archive_dir`: default $DEBAR_DATA_DIR/archive."""
    sentinels = sentinel_addresses(settings.redis_sentinels)
    # On one server, half the connections are the check path's lanes (redis_client.Lanes); none elsewhere.
    lanes_n = 0 if sentinels or settings.redis_cluster else lane_count(settings.redis_connections)
    client = make_client(
        settings.redis_url if sentinels else redis_url, cluster=settings.redis_cluster,
        timeout_s=settings.redis_timeout_s, connections=settings.redis_connections - lanes_n, sentinels=sentinels,
        sentinel_master=settings.redis_sentinel_master,
    )  # fmt: skip
    lanes = Lanes(client, lanes_n, settings.redis_timeout_s)  # the check path's: decide and rate

    async def close() -> None:
        await lanes.aclose()
        await client.aclose()

    keys = Keys(settings.redis_prefix)
    breaker = CircuitBreaker()
    # The log integrator's own: it polls Redis every round, and on a shared breaker its calls would take the one
    # trial call a half-open circuit lets through, so that a caller's read right after an outage failed for it.
    log_breaker = CircuitBreaker()
    required = None if settings.redis_min_replicas == "auto" else int(settings.redis_min_replicas)
    replication = Replication(client, keys, required, settings.redis_replica_wait_ms, has_replicas=bool(sentinels))
    signer = settings.log_entry_signer()  # registry, objection and rekey entries are signed as they are written
    store = RedisStore(
        client, keys, breaker, catalogue, replication, lanes, entry_signer=signer,
        sealer=DecisionSealer.for_bucket_key(settings.bucket_key),  # each decided group's questions, sealed
        claim_ms=claim_life_ms(settings.redis_timeout_s, settings.redis_replica_wait_ms),
    )  # fmt: skip
    return Adapters(
        store=store,
        decision_log=RedisDecisionLog(client, keys, breaker, replication, _current_pseudonym(settings)),
        objection_store=RedisObjectionStore(
            client, keys, Sealer.from_spec(settings.objection_keys), breaker, replication, entry_signer=signer
        ),
        rate_counter=RedisRateCounter(client, keys, lanes),
        subject_tally=RedisSubjectTally(client, keys, breaker),
        rekeyer=RedisRekey(
            client, keys, replication=replication, watch_keys=WatchKeys(settings.redis_prefix), entry_signer=signer
        ),
        spool=FileSpool(spool_folder(settings.data_dir, redis_url, settings.redis_prefix), catalogue),
        archive=FileArchive(archive_dir or settings.data_dir / "archive"),
        close=close,
        sequenced_log=RedisSequencedLog(
            client, keys, DecisionIds.for_bucket_key(settings.bucket_key), breaker=log_breaker
        ),
        tree=RedisTreeStore(client, TreeKeys(settings.redis_prefix), log_breaker, replication),
        checkpoints=DirectoryCheckpoints(settings.checkpoints_path),
        replicas_confirm=store.replicas_confirm,
        writes_unreplicated=lambda: replication.short,
        watch_store=RedisWatchStore(
            client, WatchKeys(settings.redis_prefix), breaker, replication, mac_key=change_key(settings.bucket_key)
        ),
    )
