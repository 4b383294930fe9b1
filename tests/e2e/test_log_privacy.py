"""No clear identifier in any log line or metric: a full flow (import, checks through a domain service and
directly, a refusal, a bad identifier, an objection) against its own sanction and railway processes with JSON
logs, then every log file and the metrics output are scanned for every clear identifier the flow used.

The lines that are there carry what an operator needs instead: the decision id, and the request id, which the
railway service passes on to the sanction service so both log the same one."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import grpc
import pytest

from debar.local.embedded_redis import EmbeddedRedis, free_port
from debar.v1 import decision_pb2, decision_pb2_grpc, railway_pb2, railway_pb2_grpc, sanction_pb2_grpc
from tests.support.metrics import scrape_text
from tests.support.requests import check_request, subject
from tests.support.servers import start_service
from tests.support.subjects import bad_checksum, new_ric, new_uscc

KEYS = "t1:test-secret-one-at-least-32-bytes"
TIMEOUT = 5


def demo_identifiers() -> set[str]:
    found = set()
    text = resources.files("debar").joinpath("data/demo.jsonl").read_text(encoding="utf-8")
    for line in text.splitlines():
        record = json.loads(line)
        found.add(record["subject"]["id"])
        found |= {p["subject"]["id"] for p in record.get("principals") or []}
    return found


def _import(url: str, file: Path, out: Path) -> int:
    with out.open("ab") as log:
        return subprocess.run(
            [sys.executable, "-m", "debar.cli.main", "--redis-url", url, "import", "--quiet", str(file)],
            stdout=log, stderr=subprocess.STDOUT, timeout=60, check=False,
            env={"DEBAR_PSEUDONYM_KEYS": KEYS, "PATH": "/usr/bin:/bin"},
        ).returncode  # fmt: skip


def _ticket(number: str) -> railway_pb2.CheckTicketRequest:
    return railway_pb2.CheckTicketRequest(
        passenger=subject(number), train_number="G123", seat_class=railway_pb2.SEAT_CLASS_SECOND
    )


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def test_a_full_flow_leaves_no_clear_identifier_in_logs_or_metrics(tmp_path: Path, logs_dir: Path) -> None:
    logs = logs_dir / "privacy"
    logs.mkdir()
    demo = str(resources.files("debar").joinpath("data/demo.jsonl"))
    person, company, bad = new_ric(), new_uscc(), bad_checksum(new_ric())
    ours = tmp_path / "ours.jsonl"
    company_line = json.loads(Path(demo).read_text().splitlines()[1])  # a company, its legal representative
    company_line.update(source_id="P-1", subject={"id_type": "USCC", "id": company})
    company_line["principals"][0]["subject"]["id"] = person
    bad_line = {**company_line, "source_id": "P-2", "subject": {"id_type": "RIC", "id": bad}, "principals": []}
    ours.write_text(f"{json.dumps(company_line)}\n{json.dumps(bad_line)}\n")
    identifiers = demo_identifiers() | {person, company, bad}
    metrics = {"sanction": free_port(), "railway": free_port()}
    with EmbeddedRedis(tmp_path / "redis") as redis:
        assert _import(redis.url, Path(demo), logs / "import.log") == 0
        assert _import(redis.url, ours, logs / "import.log") == 1  # the bad identifier is rejected, the rest added
        assert "added 1," in (logs / "import.log").read_text()
        env = {
            "DEBAR_REDIS_URL": redis.url, "DEBAR_PSEUDONYM_KEYS": KEYS, "DEBAR_DATA_DIR": str(tmp_path / "data"),
            "DEBAR_PLAINTEXT": "true", "DEBAR_LOG_FORMAT": "json",
        }  # fmt: skip
        sanction = start_service("sanction", {**env, "DEBAR_METRICS_PORT": str(metrics["sanction"])}, logs)
        railway = start_service(
            "railway",
            {**env, "DEBAR_METRICS_PORT": str(metrics["railway"]), "DEBAR_SANCTION_ADDRESS": sanction.address},
            logs,
        )
        try:
            with grpc.insecure_channel(railway.address) as rail, grpc.insecure_channel(sanction.address) as core:
                tickets = railway_pb2_grpc.RailwayServiceStub(rail)
                refused = tickets.CheckTicket(_ticket(person), timeout=TIMEOUT)
                assert not refused.allowed
                for number in sorted(identifiers - {bad}):
                    if number[0] != "9":
                        tickets.CheckTicket(_ticket(number), timeout=TIMEOUT)
                with pytest.raises(grpc.RpcError) as refused_bad:
                    tickets.CheckTicket(_ticket(bad), timeout=TIMEOUT)
                assert refused_bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                checks = sanction_pb2_grpc.SanctionServiceStub(core)
                for number in sorted(identifiers - {bad}):
                    checks.Check(check_request(number, "PROCUREMENT_BID"), timeout=TIMEOUT)
                decision_id = refused.refusals[0].decision_id
                objection = decision_pb2_grpc.DecisionServiceStub(core).FileObjection(
                    decision_pb2.FileObjectionRequest(
                        decision_id=decision_id, statement=f"I am not {person}", contact="+86 10 5555 0100"
                    ),
                    timeout=TIMEOUT,
                )
                assert objection.objection_id
            scraped = {name: scrape_text(port) for name, port in metrics.items()}
        finally:
            assert railway.stop() == 0, railway.log()
            assert sanction.stop() == 0, sanction.log()

    files = sorted(logs.iterdir())
    assert len(files) == 3
    for name, text in [*((f.name, f.read_text(errors="replace")) for f in files), *scraped.items()]:
        leaked = sorted(number for number in identifiers if number in text)
        assert not leaked, f"{name} carries clear identifiers {leaked}"

    sanction_lines, railway_lines = _lines(sanction.log_path), _lines(railway.log_path)
    assert sanction_lines and railway_lines, "the services log JSON lines"
    denied = [line for line in sanction_lines if decision_id in line.get("denied", [])]
    assert denied and denied[0]["event"] == "decisions" and denied[0]["request_id"]
    told = [line for line in railway_lines if line.get("decision_id") == decision_id]
    assert told and told[0]["request_id"] == denied[0]["request_id"], "one request id across both services"
    assert 'debar_verdicts_total{allowed="false",service="railway"}' in scraped["railway"]
