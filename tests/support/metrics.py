"""Reads a service's Prometheus metrics over real HTTP."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

Samples = list[tuple[str, dict[str, str], float]]


def scrape_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def scrape(port: int) -> Samples:
    return [
        (s.name, dict(s.labels), s.value) for f in text_string_to_metric_families(scrape_text(port)) for s in f.samples
    ]


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels` (0 when there is none)."""
    return sum(v for n, got, v in samples if n == name and all(got.get(k) == x for k, x in labels.items()))
