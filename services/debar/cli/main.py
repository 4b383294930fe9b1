"""The `debar` command: run the services, ask them, load data, operate the log."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from debar.common.settings import SERVICE_PORTS, Settings, SettingsError


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from debar.cli.services import run_service

    return run_service(args.name, settings, args.port)


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from debar.cli.up import up

    return up(settings, demo=not args.no_demo)


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from debar.cli.check import check

    return check(settings, args)


def _import(args: argparse.Namespace, settings: Settings) -> int:
    from debar.cli.import_cmd import import_file

    return asyncio.run(import_file(settings, args.file, progress=not args.quiet))


def _log_verify(args: argparse.Namespace, settings: Settings) -> int:
    from debar.cli.log_cmd import verify

    return asyncio.run(verify(settings))


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    from debar.bench.runner import run, run_railway

    return (run_railway if args.which == "railway" else run)(seconds=args.seconds, in_flight=args.in_flight)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="debar", description="Court-ordered restriction checks")
    parser.add_argument("--redis-url", help="a Redis to use (default: $DEBAR_REDIS_URL, else the embedded one)")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run one service")
    serve.add_argument("name", choices=sorted(SERVICE_PORTS))
    serve.add_argument("--port", type=int, help="listen port (default: the service's)")
    serve.set_defaults(run=_serve)

    up = commands.add_parser("up", help="run every service with the embedded Redis and demo data")
    up.add_argument("--no-demo", action="store_true", help="do not load the demo dataset")
    up.set_defaults(run=_up)

    check = commands.add_parser("check", help="ask a running sanction service")
    check.add_argument("--id-type", choices=["RIC", "USCC"], required=True)
    check.add_argument("--id", required=True)
    check.add_argument("--measure", required=True)
    check.add_argument("--at", help="ISO date-time to check at (default: now)")
    check.add_argument("--address", help="sanction service address (default: $DEBAR_SANCTION_ADDRESS)")
    check.set_defaults(run=_check)

    imp = commands.add_parser("import", help="load restrictions from a JSON Lines file")
    imp.add_argument("file")
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.set_defaults(run=_import)

    bench = commands.add_parser("bench", help="Check and BatchCheck beside an empty handler, in one run")
    bench.add_argument(
        "which",
        nargs="?",
        choices=["sanction", "railway"],
        default="sanction",
        help="sanction (default): beside an empty handler; railway: CheckTicket beside a direct Check",
    )
    bench.add_argument("--seconds", type=float, default=5.0)
    bench.add_argument("--in-flight", type=int, default=16)
    bench.set_defaults(run=_bench)

    log = commands.add_parser("log", help="the decision log")
    log_commands = log.add_subparsers(dest="log_command", required=True)
    verify = log_commands.add_parser("verify", help="walk every hash chain; exit 1 naming the first broken entry")
    verify.set_defaults(run=_log_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"debar: {error}", file=sys.stderr)
        return 2
    if args.redis_url:
        settings = Settings(**{**settings.__dict__, "redis_url": args.redis_url})
    try:
        return int(args.run(args, settings))
    except SettingsError as error:
        print(f"debar: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
