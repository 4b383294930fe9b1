"""Process-wide logging set-up, called once by each service's wiring: structlog, rendering JSON (one object a
line) or console lines, for structlog loggers and stdlib `logging` alike. Per-request context (the request id and
method bound by RequestInterceptor, with contextvars) is merged into every line logged while serving a call.

A clear identifier never belongs in a log line (log the pseudonym or mask_identifier); as a last line of defence,
anything that validates as a RIC or USCC is masked before a line is written."""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from debar.common.identifiers import mask_identifier

# Candidates only: a match is masked when it validates as a RIC or a USCC (so decision ids and hashes survive).
_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])[0-9A-Za-z]{18}(?![0-9A-Za-z])")


def _valid_identifier(text: str) -> bool:
    from stdnum.cn import ric, uscc

    return bool(ric.is_valid(text) or uscc.is_valid(text))


def mask_identifiers(text: str) -> str:
    """`text` with every valid RIC or USCC masked (first 3 and last character kept)."""
    if len(text) < 18:
        return text
    return _CANDIDATE.sub(lambda m: mask_identifier(m.group()) if _valid_identifier(m.group()) else m.group(), text)


def _mask_values(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = mask_identifiers(value)
    return event


def _orjson_dumps(event: EventDict, default: Any = repr, **_: Any) -> str:
    """JSON as json.dumps(ensure_ascii=False) writes it, by orjson (a refusal's log line is the costliest part of
    answering it after Redis); what JSON cannot hold is written as its repr, as structlog's own fallback does."""
    return orjson.dumps(event, default=default, option=orjson.OPT_NON_STR_KEYS).decode()


class _IsoUtc:
    """structlog's TimeStamper(fmt="iso", utc=True) to the character (`2026-12-02T01:17:30.123456Z`, no fraction
    at a whole second), the date and time part formatted once a second: stamping was a fifth of a log line's CPU."""

    def __init__(self, key: str) -> None:
        self._key = key
        self._second = -1
        self._prefix = ""

    def __call__(self, logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second, self._prefix = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        micros = int((now - second) * 1_000_000)
        event[self._key] = f"{self._prefix}.{micros:06d}Z" if micros else f"{self._prefix}Z"
        return event


def _add_service(service: str) -> Processor:
    def add(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
        event.setdefault("service", service)
        return event

    return add


class _Lines:
    """The logger under a structlog logger: its line, rendered by structlog's own processors, is written to the
    root handler's stream (under the handler's lock, flushed, as logging's StreamHandler writes it); the level is
    the stdlib logger's. A structlog line so skips logging's two LogRecords a line (made, then copied by
    structlog's ProcessorFormatter), its handler calls and the formatter: most of a line's cost (a Check refusal's
    `decisions` line: ~19 us -> ~7 us). The same line, to the character (tests/unit/test_logs.py); stdlib `logging`
    lines still go through the handler and its ProcessorFormatter."""

    __slots__ = ("_handler", "_logger", "name")

    def __init__(self, logger: logging.Logger, handler: logging.StreamHandler) -> None:  # type: ignore[type-arg]
        self._logger = logger
        self._handler = handler
        self.name = logger.name

    @property
    def disabled(self) -> bool:  # asked by filter_by_level, with getEffectiveLevel
        return self._logger.disabled

    def getEffectiveLevel(self) -> int:
        return self._logger.getEffectiveLevel()

    def __getattr__(self, name: str) -> Any:  # the rest of a stdlib logger (isEnabledFor, level, handlers...)
        return getattr(self._logger, name)

    def write(self, line: str, *_: Any, **__: Any) -> None:
        handler = self._handler
        try:
            with handler.lock:  # type: ignore[union-attr]
                stream = handler.stream
                stream.write(line + "\n")
                stream.flush()
        except Exception:
            handler.handleError(logging.makeLogRecord({"msg": line, "name": self.name}))

    debug = info = warning = warn = error = exception = critical = fatal = msg = write


class _LinesFactory:
    """structlog's stdlib LoggerFactory (the same logger names), its loggers writing through _Lines."""

    def __init__(self, handler: logging.StreamHandler) -> None:  # type: ignore[type-arg]
        self._factory = structlog.stdlib.LoggerFactory()
        self._handler = handler

    def __call__(self, *args: Any) -> _Lines:
        return _Lines(self._factory(*args), self._handler)


def configure(service: str, fmt: str, level: int = logging.INFO) -> None:
    """`fmt`: "json" (one JSON object a line, for collectors) or "console" (for people)."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        _IsoUtc("ts"),
        _add_service(service),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _mask_values,
            renderer,
        ],
    )
    # Lines are rendered from their event, never from the record's source location, thread or process: logging
    # need not look them up for every record (the logging HOWTO's "Optimization").
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            # What the ProcessorFormatter does to a structlog line, done here: the line is written by _Lines.
            structlog.processors.format_exc_info,
            _mask_values,
            renderer,
        ],
        logger_factory=_LinesFactory(handler),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    """A structlog logger over the stdlib logger `name` (key-value events, the request context merged in)."""
    return structlog.stdlib.get_logger(name)
