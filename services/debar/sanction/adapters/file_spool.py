"""The local spool: fail-open decisions appended to a file (fsync'd) while Redis is unreachable, replayed into the
log when it is back. Replay works on a rotated file, so decisions spooled during a replay go to a fresh file and
are never truncated away; a file is deleted only after Redis has taken every entry (replay is idempotent, so a
crash between the two only replays it again)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from debar.common.identifiers import IdKind
from debar.sanction.domain.catalogue import Catalogue
from debar.sanction.domain.decisions import CheckQuery, LoggedCheck, SpooledDecision
from debar.sanction.domain.model import SubjectRef

ACTIVE = "decisions.jsonl"


def spool_folder(data_dir: Path, redis_url: str, prefix: str) -> Path:
    """Where the spool of the log in this Redis under this key prefix lives: $DEBAR_DATA_DIR/spool/<12 hex digits>.
    A spool belongs to one log: services that share a data folder (a laptop, a volume) but not a Redis must never
    replay each other's decisions, so the folder is named from a hash of where the log is. Credentials are left out
    (a new password is the same log); a new host name or port for the same Redis starts a new folder, and the old
    one is replayed only by a service that names the Redis as before."""
    parsed = urlsplit(redis_url)
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parsed.query) if k not in ("username", "password")))
    where = parsed._replace(netloc=parsed.netloc.rpartition("@")[2], query=query, fragment="").geturl()
    return data_dir / "spool" / hashlib.sha256(f"{where} {prefix}".encode()).hexdigest()[:12]


class FileSpool:
    def __init__(self, directory: Path, catalogue: Catalogue) -> None:
        self._dir = directory
        self._catalogue = catalogue

    def append(self, decisions: list[SpooledDecision]) -> None:
        """Durable before it returns: the caller is told "allowed, spooled" only once the entry is on disk."""
        self._dir.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps(_encode(d), separators=(",", ":")) + "\n" for d in decisions)
        with open(self._dir / ACTIVE, "a", encoding="utf-8") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())

    def pending_files(self) -> list[Path]:
        """Rotates the active file out and returns every file awaiting replay, oldest first."""
        active = self._dir / ACTIVE
        if active.exists() and active.stat().st_size:
            active.rename(self._dir / f"replay-{time.time_ns()}-{os.getpid()}.jsonl")
        return sorted(self._dir.glob("replay-*.jsonl")) if self._dir.exists() else []

    def read(self, path: Path) -> list[SpooledDecision]:
        entries = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():  # a torn last line (crash mid-write) was never acknowledged to anyone
                try:
                    entries.append(self._decode(json.loads(line)))
                except (ValueError, KeyError):
                    continue
        return entries

    @staticmethod
    def done(path: Path) -> None:
        path.unlink(missing_ok=True)

    def _decode(self, d: dict[str, object]) -> SpooledDecision:
        subject = SubjectRef(IdKind(str(d["kind"])), str(d["pseudonym"]), str(d["bucket"]))
        query = CheckQuery(subject, self._catalogue.measures[str(d["measure"])], int(str(d["at"])))
        check = LoggedCheck(query, str(d["caller"]), int(str(d["revision"])), str(d.get("on_behalf_of", "")))
        return SpooledDecision(str(d["id"]), check, int(str(d["decided_at_ms"])))


def _encode(d: SpooledDecision) -> dict[str, object]:
    q = d.check.query
    return {
        "id": d.decision_id,
        "kind": q.subject.kind.value,
        "pseudonym": q.subject.pseudonym,  # never a clear identifier
        "bucket": q.subject.bucket,
        "measure": q.measure.code,
        "at": q.at,
        "caller": d.check.caller,
        "on_behalf_of": d.check.on_behalf_of,
        "revision": d.check.revision,
        "decided_at_ms": d.decided_at_ms,
    }
