"""`debar import`: restrictions from JSON Lines, one a line. Idempotent on (source, source_id); a bad line is
reported with its number and reason and never stops or corrupts the rest.

Lines are validated one by one (the registry's own `build`, as for Impose) and written in chunks: one read of the
chunk's stored records, one write of its records and index entries per Redis node, one revision bump."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import islice
from typing import Any

import orjson

from debar.common.errors import Aborted, DomainError, InvalidField
from debar.common.heap import collect_young_objects_less_often
from debar.common.identifiers import IdKind
from debar.sanction.app.import_workers import BuilderSpec, Outcome, Unpacker, build_chunk
from debar.sanction.app.registry import ImposeInput, PrincipalInput, Registry, WriteEffect
from debar.sanction.domain.model import Restriction, Role

MAX_LINE_BYTES = 64 * 1024
UTF8_BOM = b"\xef\xbb\xbf"  # accepted at the start of the file (line 1) only
CHUNK_LINES = 2000  # records read and written together
_KINDS = {"RIC": IdKind.RIC, "USCC": IdKind.USCC}


@dataclass
class ImportSummary:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def count(self, effect: WriteEffect) -> None:
        if effect is WriteEffect.CREATED:
            self.added += 1
        elif effect is WriteEffect.UPDATED:
            self.updated += 1
        else:
            self.unchanged += 1

    def counts(self) -> dict[str, int]:
        return {"added": self.added, "updated": self.updated, "unchanged": self.unchanged,
                "rejected": len(self.rejected)}  # fmt: skip

    def line(self) -> str:
        return (f"added {self.added}, updated {self.updated}, unchanged {self.unchanged}, "
                f"rejected {len(self.rejected)}")  # fmt: skip


def _epoch(value: Any, name: str) -> int | None:
    """Accepts null, an ISO date (midnight UTC), an ISO date-time, or epoch seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidField(name, "must be a date, a date-time or epoch seconds")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            if len(value) == 10:
                return int(datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC).timestamp())
            parsed = datetime.fromisoformat(value)
            return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp())
        except ValueError:
            pass
    raise InvalidField(name, "must be a date (YYYY-MM-DD), an ISO date-time or epoch seconds")


def _str(record: dict[str, Any], name: str) -> str:
    value = record.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidField(name, "must be a string")
    return value


def _subject(value: Any, name: str) -> tuple[IdKind | None, str]:
    if not isinstance(value, dict):
        raise InvalidField(name, 'must be an object like {"id_type": "RIC", "id": "..."}')
    kind = value.get("id_type")
    if kind not in _KINDS:
        raise InvalidField(f"{name}.id_type", "must be RIC or USCC")
    number = value.get("id")
    if not isinstance(number, str):
        raise InvalidField(f"{name}.id", "must be a string")
    return _KINDS[kind], number


def parse_line(record: Any) -> ImposeInput:
    if not isinstance(record, dict):
        raise InvalidField("line", "must be a JSON object")
    kind, number = _subject(record.get("subject"), "subject")
    measures = record.get("measures")
    if measures is not None and (not isinstance(measures, list) or not all(isinstance(m, str) for m in measures)):
        raise InvalidField("measures", "must be null or a list of measure codes")
    principals_raw = record.get("principals") or []
    if not isinstance(principals_raw, list):
        raise InvalidField("principals", "must be a list")
    principals = []
    for i, p in enumerate(principals_raw):
        if not isinstance(p, dict):
            raise InvalidField(f"principals[{i}]", "must be an object")
        p_kind, p_number = _subject(p.get("subject"), f"principals[{i}].subject")
        role_name = p.get("role")
        if not isinstance(role_name, str) or role_name not in Role.__members__ or role_name == "DEBTOR":
            raise InvalidField(f"principals[{i}].role", "must be LEGAL_REPRESENTATIVE, PRINCIPAL, "
                               "DIRECTLY_RESPONSIBLE or ACTUAL_CONTROLLER")  # fmt: skip
        principals.append(PrincipalInput(p_kind, p_number, Role[role_name], _str(p, "name")))
    return ImposeInput(
        source=_str(record, "source"),
        source_id=_str(record, "source_id"),
        subject_kind=kind,
        subject_id=number,
        name=_str(record, "name"),
        list_version=_str(record, "list_version"),
        legal_basis=_str(record, "legal_basis"),
        authority=_str(record, "authority"),
        case_number=_str(record, "case_number"),
        document_number=_str(record, "document_number"),
        decided_on=_str(record, "decided_on"),
        measures=measures or (),
        effective_from=_epoch(record.get("effective_from"), "effective_from"),
        effective_until=_epoch(record.get("effective_until"), "effective_until"),
        principals=principals,
    )


def decode(raw: bytes) -> Any:
    if len(raw) > MAX_LINE_BYTES:
        raise InvalidField("line", f"is longer than {MAX_LINE_BYTES} bytes")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InvalidField("line", "is not UTF-8 but starts with a UTF-16 byte order mark; save the file as UTF-8")
    if raw.startswith(UTF8_BOM):
        raise InvalidField("line", "has a UTF-8 byte order mark; only the first line of a file may")
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise InvalidField("line", f"contains a NUL byte (byte {nul}); is the file UTF-16?")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidField("line", f"is not UTF-8 (byte {error.start})") from None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise InvalidField("line", f"is not valid JSON: {error.msg} at column {error.colno}") from None


async def import_lines(
    lines: Iterable[bytes],
    registry: Registry,
    progress: Callable[[int], None] = lambda n: None,
    chunk_lines: int = CHUNK_LINES,
    workers: WorkerPlan | None = None,
) -> ImportSummary:
    """`workers`: validate in that many processes (validators made from its spec, the settings `registry` was
    made from) while this one writes; None: validate here, line by line. Same outcome either way. The counts are
    added to the totals in Redis that the sanction service exports as metrics."""
    if workers is not None and workers.processes > 0:
        summary = await _import_in_workers(lines, registry, progress, chunk_lines, workers)
    else:
        summary = await _import_here(lines, registry, progress, chunk_lines)
    await registry.record_import(summary.counts())
    return summary


async def _import_here(
    lines: Iterable[bytes], registry: Registry, progress: Callable[[int], None], chunk_lines: int
) -> ImportSummary:
    summary = ImportSummary()
    seen: dict[tuple[str, str], int] = {}
    chunk: list[Restriction] = []
    for number, line in enumerate(lines, start=1):
        progress(1)
        raw = prepared(number, line)
        if raw is None:
            continue
        try:
            item = parse_line(decode(raw))
            key = (item.source, item.source_id.strip())
            if key in seen:
                raise InvalidField("source_id", f"duplicates line {seen[key]} of this file")
            seen[key] = number
            chunk.append(registry.build(item))
        except DomainError as error:
            summary.rejected.append((number, error.message))
            continue
        if len(chunk) >= chunk_lines:
            await _write(chunk, registry, summary)
            chunk = []
    if chunk:
        await _write(chunk, registry, summary)
    return summary


@dataclass(frozen=True)
class WorkerPlan:
    spec: BuilderSpec
    processes: int = 2
    lines_per_task: int = CHUNK_LINES
    tasks_ahead: int = 4  # per process: bounds the memory held by results not written yet


def prepared(number: int, raw: bytes) -> bytes | None:
    """The line without its line end (the first one without its byte order mark); None when it is blank."""
    raw = raw.rstrip(b"\r\n")
    if number == 1 and raw.startswith(UTF8_BOM):
        raw = raw[len(UTF8_BOM) :]
    return raw if raw.strip() else None


async def _import_in_workers(
    lines: Iterable[bytes],
    registry: Registry,
    progress: Callable[[int], None],
    chunk_lines: int,
    plan: WorkerPlan,
) -> ImportSummary:
    """Workers decode, parse and build chunks of lines in parallel; this process takes their outcomes in line
    order (duplicates, rejections, the summary, exactly as line by line) and writes while they work on, one chunk
    stored while the next is prepared."""
    loop = asyncio.get_running_loop()
    summary = ImportSummary()
    seen: dict[tuple[str, str], int] = {}
    unpacker = Unpacker()
    chunk: list[Restriction] = []
    pending: deque[asyncio.Future[list[Outcome]]] = deque()
    writing: asyncio.Task[None] | None = None

    async def take(outcomes: list[Outcome]) -> None:
        nonlocal chunk, writing
        for number, key, payload in outcomes:
            if key is None:
                summary.rejected.append((number, payload))  # type: ignore[arg-type]
                continue
            if key in seen:
                summary.rejected.append((number, _duplicate(seen[key])))
                continue
            seen[key] = number
            if isinstance(payload, str):
                summary.rejected.append((number, payload))
                continue
            chunk.append(unpacker.restriction(payload))
            if len(chunk) >= chunk_lines:
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(_write(chunk, registry, summary))
                chunk = []

    executor = ProcessPoolExecutor(
        plan.processes, mp_context=multiprocessing.get_context("spawn"), initializer=collect_young_objects_less_often
    )
    try:
        numbered = iter(lines)
        first = 1
        while batch := list(islice(numbered, plan.lines_per_task)):
            progress(len(batch))
            pending.append(loop.run_in_executor(executor, build_chunk, plan.spec, first, batch))
            first += len(batch)
            if len(pending) >= plan.processes * plan.tasks_ahead:
                await take(await pending.popleft())
        while pending:
            await take(await pending.popleft())
        if writing is not None:
            await writing
            writing = None
        if chunk:
            await _write(chunk, registry, summary)
    finally:
        if writing is not None and not writing.done():
            writing.cancel()
        executor.shutdown(wait=True, cancel_futures=True)
    return summary


def _duplicate(first: int) -> str:
    return InvalidField("source_id", f"duplicates line {first} of this file").message


CHUNK_PAUSES_S = (0.1, 0.5, 2.0)
IMPORT_ACTOR = "import"  # who the log names for records written by `debar import` (the operator's feed)


async def _write(chunk: list[Restriction], registry: Registry, summary: ImportSummary) -> None:
    """A chunk that other writes kept beating to one of its records (Aborted, after the registry's own attempts) is
    sent again after a pause, the chunk being a fraction of a second of the import; then the import stops."""
    for pause in (*CHUNK_PAUSES_S, None):
        try:
            effects, _ = await registry.impose_built(chunk, IMPORT_ACTOR)
            break
        except Aborted:
            if pause is None:
                raise
            await asyncio.sleep(pause)
    for _, effect in effects:
        summary.count(effect)
