"""The witness's memory on disk: per log, the last checkpoint it cosigned, and the cosigned note for monitors.

Layout of the state folder (DEBAR_WITNESS_STATE_DIR, default $DEBAR_DATA_DIR/witness):
- `state.json`: tlog.witness.WitnessState as JSON. Replaced atomically and durably before the witness answers:
  written to a temporary file in the folder, fsync'd, renamed over the old one, then the folder fsync'd.
- `checkpoints/<lowercase hex SHA-256 of the origin>`: the latest note cosigned for that log (the log's signature
  and this witness's cosignature), written the same way right after state.json; what monitors fetch. A crash
  between the two writes leaves it one checkpoint behind (the spec allows serving it late), never ahead.
- `lock`: locked (flock, exclusive) by the one witness process using the folder, for its whole life, so a second
  witness on the same folder refuses to start instead of racing the first.

Every change is a compare-and-set: `commit` is given the bytes of state.json that the decision was made from and
refuses if the file no longer holds them. With the process's lock around read-decide-commit, two requests can
never both advance from the same state. A state.json that cannot be read stops the witness at start-up: silently
starting over would forget the last size cosigned and let a forked log be cosigned.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import secrets
from pathlib import Path

from debar.tlog.witness import WitnessState

STATE_FILE = "state.json"
NOTES_FOLDER = "checkpoints"
LOCK_FILE = "lock"
_TEMPORARY = re.compile(r"\..+\.tmp")
_ORIGIN_HASH = re.compile(r"[0-9a-f]{64}")


class StateStoreError(Exception):
    """The state folder cannot be used (unreadable state, another witness holds it, a failed write)."""


class StateChanged(StateStoreError):
    """state.json no longer holds what the decision was made from: nothing was written."""


def origin_hash(origin: str) -> str:
    """How c2sp.org/tlog-witness names a log in monitoring URLs."""
    return hashlib.sha256(origin.encode()).hexdigest()


def write_durably(path: Path, data: bytes) -> None:
    """Replaces `path` with `data` so that after a crash it holds either the old bytes or the new ones, and the new
    ones once this returns: temporary file, fsync, rename, fsync of the folder."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


class StateFolder:
    """One witness's state folder, held locked from open() to close()."""

    def __init__(self, path: Path, lock_fd: int) -> None:
        self.path = path
        self._lock_fd = lock_fd

    @classmethod
    def open(cls, path: Path) -> StateFolder:
        try:
            (path / NOTES_FOLDER).mkdir(mode=0o700, parents=True, exist_ok=True)
            lock_fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            raise StateStoreError(f"cannot use {path}: {error.strerror}") from None
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(lock_fd)
            raise StateStoreError(f"another witness uses {path}") from None
        folder = cls(path, lock_fd)
        try:
            folder._remove_temporaries()
            folder.read()
        except OSError as error:
            folder.close()
            raise StateStoreError(f"cannot use {path}: {error.strerror}") from None
        except StateStoreError:
            folder.close()
            raise
        return folder

    def close(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = -1

    def read(self) -> tuple[WitnessState, bytes]:
        """The state, and the exact bytes it was read from (to hand back to commit)."""
        raw = self._raw()
        if not raw:
            return WitnessState(), raw
        try:
            return WitnessState.from_json(raw), raw
        except ValueError as error:
            raise StateStoreError(f"{self.path / STATE_FILE}: {error}") from None

    def commit(self, read_from: bytes, state: WitnessState, origin: str, note: bytes) -> None:
        """Stores `state` if state.json still holds `read_from`, then the cosigned `note` of `origin`."""
        try:
            if self._raw() != read_from:
                raise StateChanged(f"{self.path / STATE_FILE} changed under the witness; nothing written")
            write_durably(self.path / STATE_FILE, state.to_json())
            write_durably(self.path / NOTES_FOLDER / origin_hash(origin), note)
        except OSError as error:
            raise StateStoreError(f"cannot write {self.path}: {error.strerror}") from None

    def cosigned_note(self, hashed_origin: str) -> bytes | None:
        """The latest note cosigned for the log whose origin hashes to `hashed_origin`, if any."""
        if not _ORIGIN_HASH.fullmatch(hashed_origin):
            return None
        try:
            return (self.path / NOTES_FOLDER / hashed_origin).read_bytes()
        except FileNotFoundError:
            return None

    def _raw(self) -> bytes:
        try:
            return (self.path / STATE_FILE).read_bytes()
        except FileNotFoundError:
            return b""
        except OSError as error:
            raise StateStoreError(f"cannot read {self.path / STATE_FILE}: {error.strerror}") from None

    def _remove_temporaries(self) -> None:
        """Temporary files a crash left behind: never renamed, so never part of the state."""
        for folder in (self.path, self.path / NOTES_FOLDER):
            for leftover in folder.iterdir():
                if _TEMPORARY.fullmatch(leftover.name):
                    leftover.unlink(missing_ok=True)
