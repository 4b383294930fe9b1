"""`debar import FILE`."""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from debar.common.embedded_redis import redis_url_for
from debar.common.settings import Settings
from debar.sanction.bootstrap import build_core
from debar.sanction.importer import import_lines


async def import_file(settings: Settings, file: str, progress: bool = True) -> int:
    path = Path(file)
    if not path.is_file():
        print(f"debar import: no such file: {file}", file=sys.stderr)
        return 2
    with redis_url_for(settings.redis_url, settings.data_dir / "redis") as url:
        core = build_core(settings, url)
        try:
            with (
                path.open("rb") as lines,
                tqdm(
                    total=path.stat().st_size,
                    unit="B",
                    unit_scale=True,
                    disable=not progress,
                    file=sys.stderr,
                ) as bar,
            ):
                summary = await import_lines(_counting(lines, bar), core.registry)
        finally:
            await core.close()
    for number, reason in summary.rejected:
        print(f"{file}:{number}: rejected: {reason}", file=sys.stderr)
    print(summary.line())
    return 1 if summary.rejected else 0


def _counting(lines, bar):  # type: ignore[no-untyped-def]
    for line in lines:
        bar.update(len(line))
        yield line
