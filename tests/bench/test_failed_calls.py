"""Failed calls are never throughput: with either generator, calls debar answers with an error status are counted
as failures (h2load sees HTTP only, so debar's own per-status counters decide)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import pytest

from debar.bench import h2load, targets
from debar.bench.generator import Generators, LoadGenerator
from debar.bench.rounds import Target, measure
from debar.bench.runner import CHECK, Mix, check_request, make_people, outcome_is
from debar.v1 import common_pb2


@contextmanager
def _generator(name: str) -> Iterator[LoadGenerator]:
    if name == "python":
        with Generators(1) as generators:
            yield generators
        return
    path = h2load.binary()
    if path is None:
        pytest.skip("h2load is not installed (Debian: nghttp2-client)")
    with h2load.H2Load(path) as generator:
        yield generator


@pytest.mark.timeout(90)
@pytest.mark.parametrize("generator", ["python", "h2load"])
def test_a_load_every_call_of_which_is_refused_counts_no_throughput(generator: str) -> None:
    request = check_request(make_people(1)[0]).SerializeToString()
    # portal may read decisions but not check: every Check is PERMISSION_DENIED
    mix = Mix("refused", CHECK, request, 4, "portal", outcome_is(common_pb2.OUTCOME_ALLOW))
    with targets.debar() as service, _generator(generator) as generators:
        target = Target("debar", mix.load(service.sanction.address), {"server": service.sanction.pid}, 1,
                        partial(targets.handled, service.sanction, CHECK))  # fmt: skip
        with pytest.raises(RuntimeError, match=r"no call was answered.*PERMISSION_DENIED"):
            measure(generators, target, 0.5)
