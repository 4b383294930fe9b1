"""`debar tokens ...`: an issuer's key pair (and its trust-file entry), and signed tokens, for operators."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from debar.common.callers import CALLER_NAME, is_identity, is_name_or_group
from debar.common.settings import SERVICE_PORTS, Settings
from debar.rpc.tokens import MAX_LIFETIME_S, audience_of, load_signing_key, mint, new_signing_key, write_signing_key
from debar.rpc.trust import trust_entry


def keypair(args: argparse.Namespace, settings: Settings) -> int:
    bad = [s for s in args.subjects if not is_name_or_group(s)]
    if not is_identity(args.issuer) or bad:
        what = f"--issuer {args.issuer!r}" if not is_identity(args.issuer) else f"--subjects {', '.join(bad)}"
        print(f"debar tokens keypair: {what}: expected identities ({CALLER_NAME.pattern}) or groups (kind:*)",
              file=sys.stderr)  # fmt: skip
        return 2
    out = Path(args.out)
    key = new_signing_key()
    try:
        write_signing_key(out, key)
    except FileExistsError:
        print(f"debar tokens keypair: {out} exists; not overwritten", file=sys.stderr)
        return 2
    entry = {args.issuer: trust_entry(key.public_key(), list(args.subjects))}
    print(f"private key in {out} (keep it secret: mount it as the issuer's DEBAR_TOKEN_SIGNING_KEY, or keep it for")
    print('`debar tokens issue`); add this entry under "issuers" in every trust file that should believe it:')
    print(json.dumps(entry, indent=2))
    return 0


def issue(args: argparse.Namespace, settings: Settings) -> int:
    if not 0 < args.ttl <= MAX_LIFETIME_S:
        print(f"debar tokens issue: --ttl must be in (0, {MAX_LIFETIME_S}] seconds", file=sys.stderr)
        return 2
    if not is_identity(args.sub):
        print(f"debar tokens issue: --sub must match {CALLER_NAME.pattern}", file=sys.stderr)
        return 2
    key = load_signing_key(args.key, "--key")
    print(mint(key, args.issuer, args.sub, audience_of(args.aud), time.time(), args.ttl))
    return 0


def add_parser(commands: Any) -> None:
    tokens = commands.add_parser("tokens", help="signed tokens, for TLS terminated in front of debar")
    subcommands = tokens.add_subparsers(dest="tokens_command", required=True)

    pair = subcommands.add_parser("keypair", help="an issuer's Ed25519 key pair, and its trust-file entry")
    pair.add_argument("--out", required=True, help="where to write the private key (PEM); never overwritten")
    pair.add_argument("--issuer", required=True, help="the issuer's name in trust files (e.g. railway, operator)")
    subjects = "what it may issue: identities or groups, e.g. railway, platform:12306, 'platform:*'"
    pair.add_argument("--subjects", nargs="+", required=True, metavar="IDENTITY", help=subjects)
    pair.set_defaults(run=keypair)

    minting = subcommands.add_parser("issue", help="print a signed token (JWT, EdDSA)")
    minting.add_argument("--key", required=True, help="the issuer's private key (PEM)")
    minting.add_argument("--issuer", required=True, help="the issuer's name in the trust file")
    minting.add_argument("--sub", required=True, help="the identity the token speaks for, e.g. platform:12306")
    minting.add_argument("--aud", required=True, choices=sorted(SERVICE_PORTS), help="the service it is for")
    minting.add_argument("--ttl", type=int, default=MAX_LIFETIME_S, help=f"seconds (at most {MAX_LIFETIME_S})")
    minting.set_defaults(run=issue)
