"""`debar import FILE`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tqdm import tqdm

from debar.cli.sanction_core import sanction_core
from debar.common.heap import collect_young_objects_less_often
from debar.common.settings import Settings
from debar.sanction.app.import_workers import BuilderSpec
from debar.sanction.app.importer import WorkerPlan, import_lines

WORKERS_FROM_BYTES = 4 * 1024 * 1024  # ~8,000 lines of a typical feed
WORKER_PROCESSES = 2


async def import_file(settings: Settings, file: str, progress: bool = True) -> int:
    path = Path(file)
    if not path.is_file():
        print(f"debar import: no such file: {file}", file=sys.stderr)
        return 2
    collect_young_objects_less_often()  # a chunk in flight is thousands of live objects (common/heap.py)
    async with sanction_core(settings) as core:
        with (
            path.open("rb") as lines,
            tqdm(total=path.stat().st_size, unit="B", unit_scale=True, disable=not progress, file=sys.stderr) as bar,
        ):
            summary = await import_lines(
                _counting(lines, bar) if progress else lines,
                core.registry,
                workers=_worker_plan(settings, path.stat().st_size),
            )
    for number, reason in summary.rejected:
        print(f"{file}:{number}: rejected: {reason}", file=sys.stderr)
    print(summary.line())
    return 1 if summary.rejected else 0


def _worker_plan(settings: Settings, size: int) -> WorkerPlan | None:
    """Validation in worker processes pays off once starting them (about a second) is small beside the work."""
    if size < WORKERS_FROM_BYTES:
        return None
    return WorkerPlan(
        BuilderSpec(settings.pseudonym_keys, settings.bucket_key, pseudonym_staged=settings.pseudonym_staged),
        processes=min(WORKER_PROCESSES, os.cpu_count() or 1),
    )


def _counting(lines, bar):  # type: ignore[no-untyped-def]
    for line in lines:
        bar.update(len(line))
        yield line
