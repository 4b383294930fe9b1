"""`debar witness` (serve) and `debar witness keygen` (a key pair: signer key to a file, verifier key printed)."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from debar.common.settings import Settings
from debar.local.dev_keys import write_new_secret
from debar.tlog.cosignature import generate_cosigner_key
from debar.tlog.keys import InvalidKey, check_key_name


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the witness as Ctrl-C does, before the server is up too


def run_witness(settings: Settings) -> int:
    from debar.witness.main import ListenError, serve

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        asyncio.run(serve(settings))
    except ListenError as error:
        print(f"debar witness: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def keygen(name: str, out: Path) -> int:
    try:
        check_key_name(name)
    except InvalidKey as error:
        print(f"debar witness keygen: --name: {error}", file=sys.stderr)
        return 2
    signer_key, verifier_key = generate_cosigner_key(name)
    try:
        write_new_secret(out, signer_key)
    except FileExistsError:
        print(f"debar witness keygen: {out} exists; not overwritten", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"debar witness keygen: cannot write {out}: {error.strerror}", file=sys.stderr)
        return 2
    print(verifier_key)
    return 0
