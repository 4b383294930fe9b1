"""No pipeline in the services calls a command that redis-py's cluster pipeline refuses (PIPELINE_BLOCKED_COMMANDS:
PFCOUNT, MGET, EVALSHA, ...). The refusal is a RedisClusterException, which redis_errors reads as a cluster failing
over: the call is StoreUnavailable on Redis Cluster only, and trips the shared breaker. Before: the distinct-subjects
read (`pipe.pfcount`) failed so on every scrape and `debar_distinct_subjects` stayed 0. A raw
`pipe.execute_command(...)` is not refused (fine when its keys share one slot)."""

from __future__ import annotations

import ast
from pathlib import Path

from redis.cluster import PIPELINE_BLOCKED_COMMANDS

SERVICES = Path(__file__).resolve().parents[2] / "services" / "debar"
BLOCKED = {command.replace(" ", "_").lower() for command in PIPELINE_BLOCKED_COMMANDS}


def _pipeline_names(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                call = item.context_expr
                if (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "pipeline"
                    and isinstance(item.optional_vars, ast.Name)
                ):
                    names.add(item.optional_vars.id)
    return names


def test_no_pipeline_calls_a_command_the_cluster_pipeline_refuses():
    found = []
    for path in sorted(SERVICES.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        pipes = _pipeline_names(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in pipes
                and node.func.attr in BLOCKED
            ):
                found.append(f"{path.relative_to(SERVICES)}:{node.lineno} {node.func.value.id}.{node.func.attr}")
    assert "pfcount" in BLOCKED  # the list this test reads is still redis-py's
    assert found == []
