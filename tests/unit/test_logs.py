"""Log lines never carry a clear identifier: structured JSON lines with the request context, and anything that
validates as a RIC or USCC masked as a last line of defence."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
import structlog

from debar.common import logs
from debar.common.settings import Settings, SettingsError

RIC, USCC = "11010519491231002X", "91110000600037341L"


def test_valid_identifiers_are_masked_and_other_tokens_kept() -> None:
    text = f"subject {RIC} via {USCC} decision 1795794271839-0-e2d-0 hash 0123456789abcdef01"
    masked = logs.mask_identifiers(text)
    assert RIC not in masked and USCC not in masked
    assert "110**************X" in masked and "911**************L" in masked
    assert "1795794271839-0-e2d-0" in masked and "0123456789abcdef01" in masked


def test_json_lines_carry_the_request_context_and_no_identifier(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure("sanction", "json")
    try:
        tokens = structlog.contextvars.bind_contextvars(request_id="r-1", method="/m")
        logs.get_logger("debar.test").info("decision", decision_id="D-1", note=f"about {RIC}")
        logging.getLogger("debar.stdlib").warning("stdlib line about %s", USCC)
        structlog.contextvars.reset_contextvars(**tokens)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        structlog.reset_defaults()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["event"] == "decision"
    assert all(line["request_id"] == "r-1" and line["service"] == "sanction" for line in lines)
    assert lines[0]["decision_id"] == "D-1"
    assert RIC not in json.dumps(lines) and USCC not in json.dumps(lines)


@pytest.mark.parametrize("name", ["DEBAR_METRICS_PORT", "DEBAR_HEALTH_PORT"])
def test_ports_are_validated(name: str) -> None:
    assert Settings.from_env({name: "0"})
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: "70000"})


def test_health_port_is_read() -> None:
    assert Settings.from_env({"DEBAR_HEALTH_PORT": "8086"}).health_port == 8086


def _line_of(configure: Callable[[], None], capsys: pytest.CaptureFixture[str]) -> str:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure()
    try:
        tokens = structlog.contextvars.bind_contextvars(request_id="r-3", method="/debar.v1.SanctionService/Check")
        logs.get_logger("debar.checks").info(
            "decisions", caller="railway", on_behalf_of="", decided=3, denied=["a-1", "b-2"], spooled=[],
            note=f"about {RIC} ü \"quoted\"", number=1.5, nothing=None, other=Callable,
        )  # fmt: skip
        structlog.contextvars.reset_contextvars(**tokens)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        structlog.reset_defaults()
    return capsys.readouterr().err


def _as_before() -> None:
    """logs.configure("sanction", "json") as it was before structlog lines were written directly: through
    logging (a LogRecord) and structlog's ProcessorFormatter."""
    logs.configure("sanction", "json")
    shared = structlog.get_config()["processors"][1:6]
    handler = logging.getLogger().handlers[0]
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                logs._mask_values,
                structlog.processors.JSONRenderer(serializer=logs._orjson_dumps),
            ],
        )
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def test_a_structlog_line_is_the_line_the_stdlib_path_wrote(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs.time, "time", lambda: 1_764_689_000.25)
    now = _line_of(lambda: logs.configure("sanction", "json"), capsys)
    before = _line_of(_as_before, capsys)
    assert now == before and now.count("\n") == 1
    line = json.loads(now)
    assert line["event"] == "decisions" and line["denied"] == ["a-1", "b-2"]
    assert line["ts"] == "2025-12-02T15:23:20.250000Z"
    assert RIC not in now


def test_a_structlog_line_is_written_as_the_stdlib_path_renders_it_and_honours_levels(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    quiet = logging.getLogger("debar.quiet")
    logs.configure("sanction", "json")
    quiet.setLevel(logging.WARNING)
    try:
        tokens = structlog.contextvars.bind_contextvars(request_id="r-2", method="/debar.v1.SanctionService/Check")
        checks = logs.get_logger("debar.checks")
        checks.info("decisions", caller="railway", on_behalf_of="platform:12306", decided=2,
                    denied=["1795794271839-0-e2d-0"], spooled=[], note=f"about {RIC} ü", other=object())  # fmt: skip
        checks.debug("decision", decision_id="hidden")  # below the level: not written
        logs.get_logger("debar.quiet").info("quiet")  # below its logger's own level
        logging.getLogger("debar.stdlib").warning("stdlib %s", "between")
        try:
            raise ValueError("boom")
        except ValueError:
            logs.get_logger("debar.rpc").exception("unhandled error", code=13)
        structlog.contextvars.reset_contextvars(**tokens)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        quiet.setLevel(logging.NOTSET)
        structlog.reset_defaults()
    text = capsys.readouterr().err
    raw = text.splitlines()
    lines = [json.loads(line) for line in raw]
    assert [line["event"] for line in lines] == ["decisions", "stdlib between", "unhandled error"]
    decisions, stdlib, failed = lines
    assert decisions["denied"] == ["1795794271839-0-e2d-0"] and decisions["decided"] == 2
    assert decisions["level"] == "info" and decisions["logger"] == "debar.checks" and decisions["service"] == "sanction"
    assert decisions["request_id"] == "r-2" and decisions["method"] == "/debar.v1.SanctionService/Check"
    assert decisions["note"] == "about 110**************X ü" and decisions["other"].startswith("<object object")
    assert stdlib["request_id"] == "r-2" and stdlib["level"] == "warning"
    assert failed["level"] == "error" and "ValueError: boom" in failed["exception"] and failed["code"] == 13
    assert RIC not in text
