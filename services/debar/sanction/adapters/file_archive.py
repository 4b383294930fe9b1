"""Archived records of the buckets' sequencing streams: gzip-compressed JSON Lines, one file per archive run and
bucket, named by the first and last record, under <dir>/<bucket>/. Each line is one record with every field as it
was in Redis, so `debar log verify --archive DIR` rebuilds their Merkle leaves from the files.

The Merkle tree's full level-0 tiles whose leaves are all archived go to <dir>/tile/0/, one file per archive run
(<first tile>_<last tile>_<ns>.tiles): per tile its number (8 bytes, big-endian) and its 256 leaf hashes.

The tree's leaf order up to the archive run's cursor goes to <dir>/tile/order/, one file per run and batch
(<first item>_<last item>.jsonl.gz, numbers of 20 digits): per line one item, its number `i`, `first` leaf,
`count` of leaves, `stream` and record `id`. A run repeated after a crash writes the same items again (under the
same name, or a longer file overlapping it): read_order takes each item once and refuses two that differ."""

from __future__ import annotations

import gzip
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from debar.sanction.app.ports import IntegratedRecord
from debar.sanction.domain.log_records import LogEntry

TILES = "tile"  # <dir>/tile/0/: not a bucket (those are 3 hex characters)
TILE_BYTES = 256 * 32
ORDER = "order"  # <dir>/tile/order/


def _durable(partial: Path, path: Path) -> None:
    partial.rename(path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class FileArchive:
    def __init__(self, directory: Path) -> None:
        self._dir = directory

    def write(self, bucket: str, records: list[LogEntry]) -> Path:
        """Durable before it returns (file and folder fsync'd): only then may Redis forget the records."""
        folder = self._dir / bucket
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{records[0].stream_id}_{records[-1].stream_id}.jsonl.gz"
        partial = path.with_suffix(".partial")
        with open(partial, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as handle:
            for record in records:
                line = json.dumps({"id": record.stream_id, "fields": record.fields}, ensure_ascii=False)
                handle.write(line.encode("utf-8", "surrogateescape") + b"\n")  # an insider's bytes as they were
            handle.close()
            raw.flush()
            os.fsync(raw.fileno())
        _durable(partial, path)
        return path

    def write_tiles(self, tiles: Mapping[int, bytes]) -> Path:
        """Durable before it returns (file and folder fsync'd): only then may Redis forget the tiles."""
        folder = self._dir / TILES / "0"
        folder.mkdir(parents=True, exist_ok=True)
        numbers = sorted(tiles)
        path = folder / f"{numbers[0]}_{numbers[-1]}_{time.time_ns()}.tiles"
        partial = path.with_suffix(".partial")
        with open(partial, "wb") as raw:
            for number in numbers:
                if len(tiles[number]) != TILE_BYTES:
                    raise ValueError(f"tile {number}: {len(tiles[number])} bytes, not a full tile's {TILE_BYTES}")
                raw.write(number.to_bytes(8, "big") + tiles[number])
            raw.flush()
            os.fsync(raw.fileno())
        _durable(partial, path)
        return path

    def read_tiles(self) -> dict[int, bytes]:
        """Every archived level-0 tile by number (raises ValueError for a file cut short)."""
        tiles: dict[int, bytes] = {}
        for path in sorted((self._dir / TILES / "0").glob("*.tiles")):
            data = path.read_bytes()
            step = 8 + TILE_BYTES
            if len(data) % step:
                raise ValueError(f"{path}: {len(data)} bytes, not whole tiles")
            for at in range(0, len(data), step):
                tiles[int.from_bytes(data[at : at + 8], "big")] = data[at + 8 : at + step]
        return tiles

    def write_order(self, first: int, records: Sequence[IntegratedRecord]) -> Path:
        """Durable before it returns (file and folder fsync'd): only then may Redis forget the items."""
        folder = self._dir / TILES / ORDER
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{first:020d}_{first + len(records) - 1:020d}.jsonl.gz"
        partial = path.with_suffix(".partial")
        with open(partial, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as handle:
            for i, r in enumerate(records, first):
                line = {"i": i, "first": r.first_leaf, "count": r.count, "stream": r.stream, "id": r.record_id}
                handle.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")
            handle.close()
            raw.flush()
            os.fsync(raw.fileno())
        _durable(partial, path)
        return path

    def read_order(self) -> list[IntegratedRecord]:
        """Every archived leaf-order item from item 0 (raises ValueError for a gap, or two different items of one
        number)."""
        items: dict[int, IntegratedRecord] = {}
        for path in sorted((self._dir / TILES / ORDER).glob("*.jsonl.gz")):
            try:
                with gzip.open(path, "rt", encoding="utf-8") as handle:
                    lines = [json.loads(line) for line in handle if line.strip()]
                for d in lines:
                    record = IntegratedRecord(d["stream"], d["id"], int(d["first"]), int(d["count"]))
                    if items.setdefault(int(d["i"]), record) != record:
                        raise ValueError(f"{path}: leaf-order item {d['i']} differs from another file's")
            except (OSError, EOFError, KeyError, TypeError, json.JSONDecodeError) as error:
                raise ValueError(f"{path}: unreadable ({error})") from error
        if sorted(items) != list(range(len(items))):
            missing = next(i for i in range(len(items) + 1) if i not in items)
            raise ValueError(f"archived leaf order: item {missing} is in no file (a file deleted?)")
        return [items[i] for i in range(len(items))]

    def buckets(self) -> list[str]:
        if not self._dir.exists():
            return []
        return sorted(p.name for p in self._dir.iterdir() if p.is_dir() and p.name != TILES)

    def read(self, bucket: str) -> list[LogEntry]:
        """Every archived record of a bucket's stream, oldest first."""
        files = sorted(
            (self._dir / bucket).glob("*.jsonl.gz"),
            key=lambda p: tuple(int(n) for n in p.name.split("_")[0].split("-")),
        )
        records = []
        for path in files:
            with gzip.open(path, "rt", encoding="utf-8", errors="surrogateescape") as handle:
                records += [LogEntry(d["id"], d["fields"]) for d in map(json.loads, handle) if d]
        return records
