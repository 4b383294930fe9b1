"""The CheckpointStore port as a local directory (default $DEBAR_DATA_DIR/checkpoints; in deploy/ a volume meant to
be backed by write-once storage): one file per signed checkpoint, `<size, 20 digits>-<SHA-256 of the note, 16 hex>
.note` under a folder per UTC day, written under a temporary name and linked to its
own (never overwritten, never rewritten), written and fsync'd
with its folder before append returns. The same note twice is one file; two notes of one size (re-signed after a
restart, or other cosignatures) are two files, both kept: `debar log verify` checks every one."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from debar.tlog.checkpoint import parse_checkpoint
from debar.tlog.note import parse_note

SUFFIX = ".note"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _size_of(name: str) -> int:
    return int(name.split("-", 1)[0])


class DirectoryCheckpoints:
    def __init__(self, folder: Path, clock: Callable[[], float] = time.time) -> None:
        self._folder = Path(folder)
        self._clock = clock

    @property
    def folder(self) -> Path:
        return self._folder

    def append(self, note: bytes) -> None:
        size = parse_checkpoint(parse_note(note).text).size
        name = f"{size:020d}-{hashlib.sha256(note).hexdigest()[:16]}{SUFFIX}"
        day = time.strftime("%Y-%m-%d", time.gmtime(self._clock()))
        folder = self._folder / day
        new_folder = not folder.is_dir()
        folder.mkdir(parents=True, exist_ok=True)
        if new_folder:
            _fsync_dir(self._folder)
        if (folder / name).exists():  # this very note is stored already
            return
        # Written under a temporary name, then linked to its own (a link never replaces a file): a crash midway
        # leaves a temporary file, never a truncated checkpoint.
        temporary = folder / f".{name}.{os.getpid()}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o444)
        try:
            view = memoryview(note)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, folder / name)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
        _fsync_dir(folder)

    def _paths(self) -> list[Path]:
        if not self._folder.is_dir():
            return []
        paths = [p for p in self._folder.glob(f"*/*{SUFFIX}") if p.name[:20].isdigit()]
        return sorted(paths, key=lambda p: (_size_of(p.name), p.parent.name, p.stat().st_mtime_ns, p.name))

    def latest(self) -> bytes | None:
        paths = self._paths()
        return paths[-1].read_bytes() if paths else None

    def all(self) -> list[bytes]:
        return [p.read_bytes() for p in self._paths()]
