"""Log lines never carry a clear identifier: structured JSON lines with the request context, and anything that
validates as a RIC or USCC masked as a last line of defence."""

from __future__ import annotations

import json
import logging

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
