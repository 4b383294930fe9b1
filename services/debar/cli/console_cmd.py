"""`debar console add-reviewer LOGIN`: a reviewer's personal account in the console's accounts file (argon2 hash;
the password is read from the terminal, or from stdin when it is not one)."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from debar.common.settings import Settings


def add_reviewer(args: argparse.Namespace, settings: Settings) -> int:
    from debar.console.accounts import AccountsError
    from debar.console.accounts import add_reviewer as add

    path = Path(args.file) if args.file else settings.console_accounts_path()
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.login}: ")
        if getpass.getpass("again: ") != password:
            print("debar console: the passwords differ; nothing was written", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\n")
    try:
        reviewer = add(path, args.login, password, args.display_name or "")
    except AccountsError as error:
        print(f"debar console: {error}", file=sys.stderr)
        return 1
    print(f"{reviewer.login} ({reviewer.identity}) written to {path}")
    return 0


def add_parser(commands: Any) -> None:
    console = commands.add_parser("console", help="the web console's reviewer accounts")
    sub = console.add_subparsers(dest="console_command", required=True)
    adding = sub.add_parser("add-reviewer", help="add or replace a reviewer in the accounts file")
    adding.add_argument("login", help="the login; the reviewer acts as reviewer:LOGIN")
    adding.add_argument("--display-name", help="the name shown on pages")
    adding.add_argument("--file", help="the accounts file (default: $DEBAR_CONSOLE_ACCOUNTS_FILE)")
    adding.set_defaults(run=add_reviewer)
