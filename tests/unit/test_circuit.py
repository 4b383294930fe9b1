"""The circuit breaker's states, with a fake clock."""

from __future__ import annotations

import pytest

from debar.common.circuit import CircuitBreaker, CircuitOpen, CircuitState


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_a_run_of_failures_and_fails_fast():
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, open_for_s=1.0, clock=clock)
    for _ in range(2):
        breaker.before_call()
        breaker.failed()
    assert breaker.state is CircuitState.CLOSED
    breaker.before_call()
    breaker.failed()
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    assert breaker.opened_count == 1


def test_a_success_resets_the_run():
    breaker = CircuitBreaker(failure_threshold=2, clock=Clock())
    breaker.failed()
    breaker.succeeded()
    breaker.failed()
    assert breaker.state is CircuitState.CLOSED


def test_half_open_lets_one_trial_through_and_closes_on_success():
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, open_for_s=1.0, clock=clock)
    breaker.failed()
    clock.now = 1.5
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.before_call()  # the trial
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # others still fail fast while it runs
    breaker.succeeded()
    assert breaker.state is CircuitState.CLOSED
    breaker.before_call()


def test_a_failed_trial_opens_again_for_another_pause():
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, open_for_s=1.0, clock=clock)
    breaker.failed()
    clock.now = 1.2
    breaker.before_call()
    breaker.failed()
    assert breaker.state is CircuitState.OPEN
    clock.now = 2.0
    assert breaker.state is CircuitState.OPEN
    clock.now = 2.3
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.opened_count == 2


def test_an_abandoned_trial_frees_the_slot_for_the_next_one():
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, open_for_s=1.0, clock=clock)
    breaker.failed()
    clock.now = 1.5
    breaker.before_call()
    breaker.abandoned()  # e.g. the trial call was cancelled by its deadline
    breaker.before_call()  # a new trial may go
    breaker.succeeded()
    assert breaker.state is CircuitState.CLOSED
