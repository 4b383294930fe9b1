"""The `debar` command: run the services, ask them, load data, operate the log."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from debar.cli import console_cmd, objections_cmd, tlog_cmd, tokens_cmd
from debar.cli.services import available_services
from debar.common.errors import Aborted, Unavailable
from debar.common.settings import Settings, SettingsError
from debar.local.embedded_redis import EmbeddedRedisError
from debar.sanction.app.ports import StoreUnavailable


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from debar.cli.services import run_service

    return run_service(args.name, settings, args.port)


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from debar.cli.up import up

    return up(settings, demo=not args.no_demo, certs=Path(args.certs) if args.certs else None, topology=args.topology)


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from debar.cli.check import check

    return check(settings, args)


def _import(args: argparse.Namespace, settings: Settings) -> int:
    from debar.cli.import_cmd import import_file

    return asyncio.run(import_file(settings, args.file, progress=not args.quiet))


def _log_archive(args: argparse.Namespace, settings: Settings) -> int:
    from debar.cli.log_cmd import archive

    return asyncio.run(archive(settings, args.dir, args.keep_days))


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    from debar.bench.runner import run, run_railway, run_replicas

    if args.which == "import":
        from debar.bench.import_bench import run_import

        return run_import(args.records, args.cluster_records, args.redis)

    if args.which == "watch":
        from debar.bench.watch_bench import run_watch

        return run_watch(args.subscriptions, args.imposes, args.deliveries)

    if args.which == "railway":
        return run_railway(args.seconds, args.in_flight, args.rounds, args.generator)
    if args.which == "replicas":
        return run_replicas(args.seconds, args.in_flight, args.rounds, args.generator)
    return run(args.seconds, args.in_flight, args.rounds, args.caller, args.generator)


def _certs_dev(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from debar.local.certs import write_dev_certs

    directory = Path(args.dir)
    issued = write_dev_certs(directory)
    print(f"CA and certificates for {', '.join(issued)} in {directory} (development only: the CA key is there too)")
    print(f"use e.g. DEBAR_TLS_CA={directory}/ca.pem DEBAR_TLS_CERT={directory}/railway.pem "
          f"DEBAR_TLS_KEY={directory}/railway-key.pem")  # fmt: skip
    return 0


def _rekey(args: argparse.Namespace, settings: Settings) -> int:
    from debar.cli.rekey_cmd import run_rekey

    return asyncio.run(run_rekey(settings))


def _witness(args: argparse.Namespace, settings: Settings) -> int:
    from debar.cli.witness_cmd import run_witness

    return run_witness(settings)


def _witness_keygen(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from debar.cli.witness_cmd import keygen

    return keygen(args.name, Path(args.out))


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date-time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="debar", description="Court-ordered restriction checks")
    parser.add_argument("--redis-url", help="a Redis to use (default: $DEBAR_REDIS_URL, else the embedded one)")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run one service")
    serve.add_argument("name", choices=sorted(available_services()))
    serve.add_argument("--port", type=int, help="listen port (default: the service's)")
    serve.set_defaults(run=_serve)

    up = commands.add_parser("up", help="run every service with demo data (Redis: the configured one, else embedded)")
    up.add_argument("--no-demo", action="store_true", help="do not load the demo dataset")
    up.add_argument("--certs", help="mutual TLS with the certificates in this folder (`debar certs dev` makes them)")
    up.add_argument(
        "--topology", choices=["single", "sentinel", "cluster"], default="single",
        help="the Redis to start when none is configured: single (default, the embedded server, kept), sentinel "
        "(a master, 2 replicas, 3 Sentinels) or cluster (3 masters with a replica each), fresh each run",
    )  # fmt: skip
    up.set_defaults(run=_up)

    check = commands.add_parser("check", help="ask a running sanction service")
    check.add_argument("--id-type", choices=["RIC", "USCC"], required=True)
    check.add_argument("--id", required=True)
    check.add_argument("--measure", required=True)
    check.add_argument("--at", type=_moment, help="ISO date-time to check at (default: now; no zone: UTC)")
    check.add_argument("--address", help="sanction service address (default: $DEBAR_SANCTION_ADDRESS)")
    check.set_defaults(run=_check)

    imp = commands.add_parser("import", help="load restrictions from a JSON Lines file")
    imp.add_argument("file")
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.set_defaults(run=_import)

    bench = commands.add_parser(
        "bench",
        help="Check and BatchCheck beside the fastest empty handler, in alternating rounds of one run",
        description="Runs on private servers it starts and stops itself (never the configured Redis). The baseline "
        "is a bare generic gRPC handler (grpc.aio and sync, the faster counts) answering debar's own answer bytes; "
        "requests are built before the clock starts and sent by load generator processes of their own, as many as "
        "the baseline needs (checked at the start of every run and printed).",
    )
    bench.add_argument(
        "which",
        nargs="?",
        choices=["sanction", "railway", "replicas", "import", "watch"],
        default="sanction",
        help="sanction (default): Check (unrestricted and restricted subject, 16 and 1 in flight) and BatchCheck "
        "of 100 beside the bare handler; railway: CheckTicket beside a direct Check; replicas: Check and "
        "BatchCheck acknowledged after 0 and after 1 replica (DEBAR_REDIS_MIN_REPLICAS); "
        "import: a realistic feed through `debar import`, restrictions/s and Redis bytes per restriction; "
        "watch: subscriptions held, change delivery p99, Redis bytes per subscription, Impose with and without",
    )
    bench.add_argument("--records", type=int, default=1_000_000, help="import: restrictions in the feed")
    bench.add_argument("--cluster-records", type=int, help="import: restrictions for the cluster (default: --records)")
    bench.add_argument("--redis", choices=["both", "single", "cluster"], default="both", help="import: where to load")
    bench.add_argument("--subscriptions", type=int, default=1_000_000, help="watch: subscriptions held")
    bench.add_argument("--imposes", type=int, default=2000, help="watch: Imposes per throughput figure")
    bench.add_argument("--deliveries", type=int, default=200, help="watch: changes timed")
    timed = "sanction, railway, replicas"
    bench.add_argument("--seconds", type=float, default=3.0, help=f"{timed}: seconds per target per round")
    bench.add_argument("--rounds", type=int, default=5, help=f"{timed}: rounds, targets alternating")
    bench.add_argument("--in-flight", type=int, default=16, help=f"{timed}: calls in flight")
    bench.add_argument(
        "--generator", choices=["auto", "h2load", "python"], default="auto",
        help=f"{timed}: the load generator; auto (default): h2load (Debian: nghttp2-client) when on PATH, a C "
        "client that costs the shared cores far less per call than the Python one, else python",
    )  # fmt: skip
    bench.add_argument(
        "--caller", default="railway",
        help="sanction: who asks the Checks, a caller of data/scopes.json (default railway, a domain caller with a "
        "rate; BatchCheck always asks as bench, which has none)",
    )  # fmt: skip
    bench.set_defaults(run=_bench)

    certs = commands.add_parser("certs", help="certificates for mutual TLS")
    certs_commands = certs.add_subparsers(dest="certs_command", required=True)
    certs_dev = certs_commands.add_parser("dev", help="a local CA and a certificate per service and client (dev only)")
    certs_dev.add_argument("--dir", default="var/certs", help="where to write them (default: var/certs)")
    certs_dev.set_defaults(run=_certs_dev)

    rekey = commands.add_parser("rekey", help="move stored pseudonyms to the current key after a rotation")
    rekey.set_defaults(run=_rekey)

    log = commands.add_parser("log", help="the decision log")
    log_commands = log.add_subparsers(dest="log_command", required=True)
    tlog_cmd.add_log_verify(log_commands)
    archive = log_commands.add_parser("archive", help="move records past their retention to files, then trim them")
    archive.add_argument("--dir", help="archive folder (default: $DEBAR_DATA_DIR/archive)")
    archive.add_argument("--keep-days", type=int, default=365, help="keep every decision at least this long")
    archive.set_defaults(run=_log_archive)

    witness = commands.add_parser(
        "witness",
        help="run a witness: cosigns a log's checkpoints consistent with the last it cosigned (HTTP)",
        description="Serves c2sp.org/tlog-witness add-checkpoint on $DEBAR_HOST:$DEBAR_WITNESS_PORT with the key in "
        "$DEBAR_WITNESS_KEY, for the logs in $DEBAR_WITNESS_LOGS, keeping its state in $DEBAR_WITNESS_STATE_DIR.",
    )
    witness.set_defaults(run=_witness)
    witness_commands = witness.add_subparsers(dest="witness_command")
    keygen = witness_commands.add_parser(
        "keygen", help="make a witness key pair: the signer key into a new file, the verifier key printed"
    )
    keygen.add_argument("--name", required=True, help="the witness's name, e.g. witness.example.org/w1")
    keygen.add_argument("--out", required=True, help="the new file for the signer key (mode 0600, never overwritten)")
    keygen.set_defaults(run=_witness_keygen)

    objections_cmd.add_parser(commands)
    console_cmd.add_parser(commands)
    tokens_cmd.add_parser(commands)
    tlog_cmd.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        env = dict(os.environ)
        if args.redis_url:  # the flag stands in for DEBAR_REDIS_URL (or its file), before settings are validated
            env["DEBAR_REDIS_URL"] = args.redis_url
            env.pop("DEBAR_REDIS_URL_FILE", None)
        settings = Settings.from_env(env)
    except SettingsError as error:
        print(f"debar: {error}", file=sys.stderr)
        return 2
    # Our own errors end a command with one line and 2, as a bad setting does (1 means the command ran and found
    # something wrong, e.g. a broken log); anything else is a bug and keeps its traceback.
    try:
        return int(args.run(args, settings))
    except SettingsError as error:
        print(f"debar: {error}", file=sys.stderr)
        return 2
    except (StoreUnavailable, Unavailable) as error:
        print(f"debar: Redis unavailable ({error})", file=sys.stderr)
        return 2
    except Aborted as error:  # other writes to a record kept coming between this command's read and write
        print(f"debar: {error}", file=sys.stderr)
        return 2
    except EmbeddedRedisError as error:
        print(f"debar: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
