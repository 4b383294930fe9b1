"""`debar up`: the whole system on one machine, with the configured Redis or else the embedded one, and the demo
dataset."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from debar.cli.sanction_core import sanction_core
from debar.cli.services import CONSOLE, SANCTION, WEB_SERVICES, available_services, port_of
from debar.cli.startup import http_start_failure, port_taken, start_failure
from debar.common.settings import Settings
from debar.common.witnesses import WitnessEndpoint
from debar.console.accounts import write_demo_reviewers
from debar.local.certs import CLERKS, CLIENTS, PLATFORMS, REVIEWERS, write_dev_certs
from debar.local.dev_keys import dev_log_origin, log_signing_key, witness_key
from debar.local.embedded_redis import EmbeddedRedis, EmbeddedRedisError, running_url
from debar.local.local_replicas import ReplicatedCluster, SentinelGroup
from debar.sanction.app.importer import import_lines


async def _load_demo(settings: Settings) -> str:
    demo = resources.files("debar").joinpath("data/demo.jsonl").read_bytes()
    async with sanction_core(settings) as core:
        summary = await import_lines(demo.splitlines(), core.registry)
    return summary.line()


def _tls_env(certs: Path, name: str) -> dict[str, str]:
    return {"DEBAR_TLS_CA": str(certs / "ca.pem"), "DEBAR_TLS_CERT": str(certs / f"{name}.pem"),
            "DEBAR_TLS_KEY": str(certs / f"{name}-key.pem")}  # fmt: skip


def _actors(certs: Path) -> str:
    """Which certificate each demo actor calls with (each its own identity)."""
    platforms = ", ".join(f"{platform} ({service})" for service, platform in PLATFORMS.items())
    return (
        f"Each actor has its own certificate in {certs} (NAME.pem, NAME-key.pem): reviewers {', '.join(REVIEWERS)}; "
        f"registry clerk {', '.join(CLERKS)}; platforms {platforms}; portal; console."
    )


def _shown(url: str) -> str:
    """The URL without its password, for the terminal."""
    parsed = urlsplit(url)
    if not parsed.password:
        return url
    return parsed._replace(netloc=parsed.netloc.replace(f":{parsed.password}@", ":***@", 1)).geturl()


TOPOLOGIES = ("single", "sentinel", "cluster")


@contextlib.contextmanager
def _redis(settings: Settings, topology: str = "single") -> Iterator[Settings]:
    """The settings of the Redis to use: the configured one (DEBAR_REDIS_URL, --redis-url, DEBAR_REDIS_SENTINELS)
    as it is; else, for `topology` single, an embedded server on the data folder, unless one already runs there
    (another `debar up` owns it); for sentinel or cluster, a fresh replicated topology of private servers (a master
    with 2 replicas under 3 Sentinels, or 3 masters with a replica each), to watch a failover (its data is not
    kept from one run to the next)."""
    if settings.redis_sentinels:  # DEBAR_REDIS_URL (maybe empty) then holds only the master's credentials
        print(f"redis     {settings.redis_location} (configured, Sentinel)")
        yield settings
        return
    if settings.redis_url:
        kind = "configured, cluster" if settings.redis_cluster else "configured"
        print(f"redis     {_shown(settings.redis_url)} ({kind})")
        yield settings
        return
    if topology != "single":
        folder = settings.data_dir / f"redis-{topology}"
        shutil.rmtree(folder, ignore_errors=True)
        if topology == "sentinel":
            with SentinelGroup(folder) as group:
                print(f"redis     Sentinel: master 127.0.0.1:{group.servers[0].port}, replicas "
                      f"{', '.join(f'127.0.0.1:{s.port}' for s in group.servers[1:])}, Sentinels {group.sentinels} "
                      f"(data in {folder}, not kept)")  # fmt: skip
                yield replace(settings, redis_sentinels=group.sentinels, redis_sentinel_master=group.master_name)
            return
        cluster = ReplicatedCluster(folder).start()
        try:
            masters = ", ".join(f"127.0.0.1:{n.port}" for n in cluster.nodes)
            replicas = ", ".join(f"127.0.0.1:{n.port}" for n in cluster.replicas)
            print(f"redis     Cluster: masters {masters}, their replicas {replicas} (data in {folder}, not kept)")
            yield replace(settings, redis_url=cluster.url, redis_cluster=True)
        finally:
            cluster.stop()
        return
    folder = settings.data_dir / "redis"
    if running_url(folder):
        raise EmbeddedRedisError(f"an embedded Redis already runs on {folder} (another `debar up`?)")
    with EmbeddedRedis(folder) as redis:
        print(f"redis     {redis.url} (embedded, data in {folder})")
        yield replace(settings, redis_url=redis.url)


def _redis_env(settings: Settings) -> dict[str, str]:
    """What tells the services where the Redis is."""
    env = {"DEBAR_REDIS_URL": settings.redis_url, "DEBAR_REDIS_CLUSTER": str(settings.redis_cluster).lower()}
    if settings.redis_sentinels:
        env.update(DEBAR_REDIS_SENTINELS=settings.redis_sentinels,
                   DEBAR_REDIS_SENTINEL_MASTER=settings.redis_sentinel_master)  # fmt: skip
    return env


@dataclass(frozen=True)
class _Witness:
    env: dict[str, str]  # the witness process's environment
    url: str
    verifier_key: str
    log_env: dict[str, str]  # what the log (the sanction service) is given to sign and ask


def _witness(settings: Settings, env: dict[str, str]) -> _Witness:
    """One witness for this machine's log: its own key and state folder (default $DEBAR_DATA_DIR/witness, made if
    missing), on loopback, following the log's key (DEBAR_LOG_SIGNING_KEY, made under the data folder unless
    given). `log_env` points the log at both: DEBAR_LOG_SIGNING_KEY and DEBAR_LOG_WITNESSES (for the sanction
    service only: parsing witness keys loads cryptography, which the other processes need not pay for)."""
    log_key_path = Path(settings.log_signing_key or settings.data_dir / "log-signing.key")
    log = log_signing_key(log_key_path, dev_log_origin(settings.redis_prefix))
    folder = settings.witness_state_path
    key_path = Path(settings.witness_key) if settings.witness_key else folder / "witness.key"
    cosigner = witness_key(key_path)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    url = f"http://{host}:{settings.witness_port}"
    witness_env = {**env, "DEBAR_WITNESS_KEY": str(key_path), "DEBAR_WITNESS_STATE_DIR": str(folder),
                   "DEBAR_WITNESS_LOGS": log.verifier().verifier_key(), "DEBAR_HEALTH_PORT": "0",
                   "DEBAR_METRICS_PORT": "0"}  # fmt: skip
    ours = WitnessEndpoint(cosigner.verifier(), url).setting()
    log_env = {
        "DEBAR_LOG_SIGNING_KEY": str(log_key_path),
        "DEBAR_LOG_WITNESSES": ",".join(w for w in (env.get("DEBAR_LOG_WITNESSES", ""), ours) if w.strip()),
    }
    return _Witness(witness_env, url, cosigner.verifier().verifier_key(), log_env)


def _console_reviewer_proofs(certs: Path, settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    """With --certs the sanction service requires people's proofs (DEBAR_DELEGATION_PROOF): the console signs its
    reviewers' with a key of its own in the certificates folder, which a trust file of its own names for reviewer:*
    (accounts sign-in trusts the console). The sanction service's env and the console's."""
    from debar.rpc import tokens
    from debar.rpc.trust import trust_entry

    key_path = certs / "console-reviewers-key.pem"
    if not key_path.exists():
        tokens.write_signing_key(key_path, tokens.new_signing_key())
    key = tokens.load_signing_key(str(key_path), "DEBAR_CONSOLE_REVIEWER_KEY")
    trust_path = certs / "console-reviewers-trust.json"
    issuer = settings.console_reviewer_issuer
    trust_path.write_text(json.dumps({"issuers": {issuer: trust_entry(key.public_key(), ["reviewer:*"])}}))
    sanction = {} if settings.token_trust_file else {"DEBAR_TOKEN_TRUST_FILE": str(trust_path)}
    return sanction, {"DEBAR_CONSOLE_REVIEWER_KEY": str(key_path)}


def _dev_platforms_file(data_dir: Path) -> Path:
    """authz's platforms file for `debar up --certs`: the dev folder's `envoy` certificate is its proxy (no platform
    mapped: every principal is asked for by authz alone)."""
    path = data_dir / "authz-platforms.json"
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"proxies": ["envoy"], "platforms": {}}) + "\n", encoding="utf-8")
    return path


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops everything as Ctrl-C does, during start-up too


def up(settings: Settings, demo: bool = True, certs: Path | None = None, topology: str = "single") -> int:
    """Plaintext on loopback, said explicitly (DEBAR_TLS_* are not passed on); with `certs`, mutual TLS with each
    service's own certificate from that `debar certs dev` folder (made there if missing). `topology`: the Redis to
    start when none is configured (see _redis)."""
    names = available_services()
    host = settings.host
    ports = {name: port_of(settings, name) for name in names}
    taken = [f"{host}:{ports[name]} ({name})" for name in names if port_taken(host, ports[name])]
    if port_taken(host, settings.witness_port):
        taken.append(f"{host}:{settings.witness_port} (witness)")
    if taken:
        print(f"debar up: already in use: {', '.join(taken)} (another `debar up`?); nothing started", file=sys.stderr)
        return 1
    with _redis(settings, topology) as on_redis:
        if demo:
            print(f"demo data {asyncio.run(_load_demo(on_redis))}")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEBAR_TLS_")}
        env.update(**_redis_env(on_redis), DEBAR_PLAINTEXT="false" if certs else "true")
        # The console's two demo reviewers, with fresh passwords each run (other accounts in the file are kept).
        accounts = settings.console_accounts_path()
        demo_reviewers = write_demo_reviewers(accounts)
        env.update(DEBAR_CONSOLE_SIGN_IN="accounts", DEBAR_CONSOLE_ACCOUNTS_FILE=str(accounts))
        prober = replace(settings, tls_ca="", tls_cert="", tls_key="")
        if certs is not None:
            missing = tuple(name for name in names if not (certs / f"{name}.pem").exists())
            actors = tuple(name for name in CLIENTS if name not in names and not (certs / f"{name}.pem").exists())
            if not (certs / "ca.pem").exists():
                write_dev_certs(certs)
            elif missing or actors:  # a folder made before a service (authz) or an actor was added: its CA issues them
                write_dev_certs(certs, services=missing, clients=actors)
            prober = replace(prober, tls_ca=str(certs / "ca.pem"), tls_cert=str(certs / "bench.pem"),
                             tls_key=str(certs / "bench-key.pem"))  # fmt: skip
            if not settings.authz_platforms_file:  # beyond local mode authz answers only the proxies it is told of
                env.update(DEBAR_AUTHZ_PLATFORMS_FILE=str(_dev_platforms_file(settings.data_dir)))
        witness = _witness(settings, env)
        proofs: dict[str, dict[str, str]] = {}
        if certs is not None:
            proofs[SANCTION], proofs[CONSOLE] = _console_reviewer_proofs(certs, settings)
        signal.signal(signal.SIGTERM, _interrupt)
        children: dict[str, subprocess.Popen[bytes]] = {}
        try:
            # The gRPC services together, then the web console and the witness (fewer processes starting at once on
            # a busy machine; a log with no witness yet only counts the cosignature it missed).
            grpc_services, web_services = [n for n in names if n not in WEB_SERVICES], [n for n in WEB_SERVICES]
            for group, with_witness in ((grpc_services, False), (web_services, True)):
                if with_witness:
                    children["witness"] = subprocess.Popen([sys.executable, "-m", "debar.cli.main", "witness"],
                                                           env=witness.env)  # fmt: skip
                for name in group:
                    child_env = {**env, **_tls_env(certs, name)} if certs else dict(env)
                    if name == SANCTION:
                        child_env.update(witness.log_env)
                    child_env.update(proofs.get(name, {}))
                    children[name] = subprocess.Popen([sys.executable, "-m", "debar.cli.main", "serve", name],
                                                      env=child_env)  # fmt: skip
                for name in group:
                    web = name in WEB_SERVICES
                    child = children[name]
                    failure = (http_start_failure(child, host, ports[name]) if web
                               else start_failure(child, host, ports[name], prober))  # fmt: skip
                    if failure:
                        print(f"debar up: {name} {failure}; stopping the others", file=sys.stderr)
                        return 1
                    print(f"{name:<12}{'http://' if web else ''}{host}:{ports[name]}")
            failure = http_start_failure(children["witness"], host, settings.witness_port)
            if failure:
                print(f"debar up: witness {failure}; stopping the others", file=sys.stderr)
                return 1
            print(f"{'witness':<12}{witness.url} (cosigner key {witness.verifier_key})")
            tls_hint = " ".join(f"{k}={v}" for k, v in _tls_env(certs, "bench").items()) + " " if certs else ""
            print(
                f"\nready. Try:\n  {tls_hint}debar check --id-type RIC --id 11010519491231002X --measure RAIL_G_TRAIN"
            )
            if certs is not None:
                print(_actors(certs))
            sign_ins = ", ".join(f"{reviewer.login} / {password}" for reviewer, password in demo_reviewers)
            print(f"\nconsole: http://{host}:{ports['console']}/ (reviewers sign in at /signin as {sign_ins}; "
                  f"accounts in {accounts})")  # fmt: skip
            print("Ctrl-C stops everything.", flush=True)
            while all(child.poll() is None for child in children.values()):
                time.sleep(0.2)
            for name, child in children.items():
                if child.returncode is not None:
                    print(f"debar up: {name} exited with code {child.returncode}; stopping the others", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0
        finally:
            _stop(children)


def _stop(children: dict[str, subprocess.Popen[bytes]]) -> None:
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children.values():
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
