"""A circuit breaker: after a run of failures a dependency is not asked again for a while, so a dead or hung Redis
costs each caller a fast failure instead of a wait for its timeout. After the pause one trial call goes through
(half open); its success closes the circuit, its failure opens it again."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum


class CircuitState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpen(Exception):
    """Raised instead of calling the dependency while the circuit is open."""


class CircuitBreaker:
    def __init__(
        self, failure_threshold: int = 3, open_for_s: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._threshold = failure_threshold
        self._open_for_s = open_for_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False
        self.opened_count = 0

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self._clock() - self._opened_at >= self._open_for_s:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def before_call(self) -> None:
        """Raises CircuitOpen when the call must not be made now."""
        state = self.state
        if state is CircuitState.OPEN or (state is CircuitState.HALF_OPEN and self._trial_running):
            raise CircuitOpen("circuit open: the dependency failed repeatedly and is being given a rest")
        if state is CircuitState.HALF_OPEN:
            self._trial_running = True

    def succeeded(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_running = False

    def abandoned(self) -> None:
        """The call ended without telling whether the dependency works (e.g. it was cancelled)."""
        self._trial_running = False

    def failed(self) -> None:
        self._failures += 1
        was_trial, self._trial_running = self._trial_running, False
        if was_trial or self._failures >= self._threshold:
            if self._opened_at is None or was_trial:
                self.opened_count += 1
            self._opened_at = self._clock()
