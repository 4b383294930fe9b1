"""What log tests share: waiting for a decision's receipt, and a realistic court feed for `debar import`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc

from debar.v1 import decision_pb2
from tests.support.servers import wait_for
from tests.support.subjects import new_ric

READER = [("x-debar-caller", "reviewer:li")]


def receipt_when_ready(decisions: Any, decision_id: str, timeout_s: float = 60) -> Any:
    """GetDecisionProof once the decision is in a signed checkpoint (UNAVAILABLE until then; anything else fails)."""
    got: list[Any] = []

    def ready() -> bool:
        try:
            got.append(
                decisions.GetDecisionProof(
                    decision_pb2.GetDecisionProofRequest(decision_id=decision_id), metadata=READER, timeout=30
                )
            )
            return True
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error
            return False

    assert wait_for(ready, timeout_s=timeout_s, interval_s=0.2)
    return got[0]


def write_court_feed(path: Path, count: int, tag: str, since: str = "2026-01-01") -> Path:
    """`count` consumption-restriction orders of fresh people, in the import format; `tag` keeps source ids apart."""
    path.write_text(
        "".join(
            json.dumps({
                "source": "court_consumption_order", "source_id": f"{tag}-{i}",
                "subject": {"id_type": "RIC", "id": new_ric()}, "legal_basis": "SPC Provisions, Art. 3",
                "authority": "Beijing Chaoyang District People's Court", "case_number": f"({since[:4]}) {tag} {i}",
                "effective_from": since,
            }) + "\n"
            for i in range(count)
        )
    )  # fmt: skip
    return path
