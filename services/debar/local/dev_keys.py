"""Keys `debar up` makes on a laptop when none is configured: the log's signing key and the witness's cosigning key,
each a file under the data folder, made once (mode 0600, never overwritten) and reused by every later run so that
the witness's state keeps matching the log it follows. Development only: a deployment makes its keys itself
(`debar witness keygen`, `debar keys log-signing`) and keeps them in Secrets."""

from __future__ import annotations

import os
from pathlib import Path

from debar.tlog.cosignature import CosignatureSigner, parse_cosigner_signer_key
from debar.tlog.keys import Ed25519Signer, parse_signer_key

DEV_WITNESS_NAME = "witness.debar.local/dev"


def dev_log_origin(prefix: str) -> str:
    """The log's origin when none is configured: the deployment is this machine, the log is the key prefix's."""
    return f"debar.local/{prefix}"


def write_new_secret(path: Path, text: str) -> None:
    """A new file readable by its owner only; an existing one is never overwritten (it may be a key in use)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(text + "\n")
        out.flush()
        os.fsync(out.fileno())


def log_signing_key(path: Path, origin: str) -> Ed25519Signer:
    """The signer key in `path`, made there (named `origin`) when missing."""
    if not path.exists():
        write_new_secret(path, Ed25519Signer.generate(origin).signer_key())
    return parse_signer_key(path.read_text(encoding="ascii"))


def witness_key(path: Path, name: str = DEV_WITNESS_NAME) -> CosignatureSigner:
    """The witness signer key in `path`, made there when missing."""
    if not path.exists():
        write_new_secret(path, CosignatureSigner.generate(name).signer_key())
    return parse_cosigner_signer_key(path.read_text(encoding="ascii"))
