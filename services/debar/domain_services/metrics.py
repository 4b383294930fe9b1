"""A domain service's metrics and verdict log: verdicts by service and allowed/refused, and the sanction-service
calls that failed. Latency is RpcMetrics' (per method), recorded by the RequestInterceptor."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter

from debar.common.logs import get_logger
from debar.v1 import verdict_pb2

log = get_logger("debar.verdicts")


class VerdictMetrics:
    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self._service = service
        self.verdicts = Counter(
            "debar_verdicts", "Verdicts answered, by service and allowed (true/false)", ["service", "allowed"],
            registry=registry,
        )  # fmt: skip
        self.sanction_errors = Counter(
            "debar_sanction_errors", "BatchCheck calls to the sanction service that failed, by status code",
            ["service", "code"], registry=registry,
        )  # fmt: skip
        self._allowed = self.verdicts.labels(service, "true")
        self._refused = self.verdicts.labels(service, "false")

    def on_response(self, method: str, response: Any) -> None:
        """RequestInterceptor's response observer: a Verdict, or a response carrying `verdicts` (CheckOrder)."""
        if isinstance(response, verdict_pb2.Verdict):
            self._count(response)
        elif hasattr(response, "verdicts"):
            for verdict in response.verdicts:
                self._count(verdict)

    def _count(self, verdict: verdict_pb2.Verdict) -> None:
        if verdict.allowed:
            self._allowed.inc()
            return
        self._refused.inc()
        for refusal in verdict.refusals:  # masked subject only; the decision id leads to the rest
            log.info(
                "refused", decision_id=refusal.decision_id, measure=refusal.measure, subject=refusal.subject,
                subject_index=refusal.subject_index,
            )  # fmt: skip

    def sanction_error(self, code: str) -> None:
        self.sanction_errors.labels(self._service, code).inc()
