"""Archived records of the buckets' sequencing streams: gzip-compressed JSON Lines, one file per archive run and
bucket, named by the first and last record, under <dir>/<bucket>/. Each line is one record with every field as it
was in Redis, so `debar log verify --archive DIR` rebuilds their Merkle leaves from the files."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

from debar.sanction.domain.log_records import LogEntry


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
                handle.write(line.encode() + b"\n")
            handle.close()
            raw.flush()
            os.fsync(raw.fileno())
        partial.rename(path)
        directory = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return path

    def buckets(self) -> list[str]:
        return sorted(p.name for p in self._dir.iterdir() if p.is_dir()) if self._dir.exists() else []

    def read(self, bucket: str) -> list[LogEntry]:
        """Every archived record of a bucket's stream, oldest first."""
        files = sorted(
            (self._dir / bucket).glob("*.jsonl.gz"),
            key=lambda p: tuple(int(n) for n in p.name.split("_")[0].split("-")),
        )
        records = []
        for path in files:
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                records += [LogEntry(d["id"], d["fields"]) for d in map(json.loads, handle) if d]
        return records
