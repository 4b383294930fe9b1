"""Each calling platform's own check rate at a domain service, so that one platform's burst (or a scraper behind
its credential) cannot use up what the others are answered with. Counted in this process, in fixed windows; the
sanction service counts each platform again, across replicas (its scopes file's rates, keyed by platform). Pure:
the clock is a parameter."""

from __future__ import annotations

import time
from collections.abc import Callable

from debar.common.errors import RateLimited


class PlatformRates:
    def __init__(self, checks: int, window_s: int, clock: Callable[[], float] = time.time) -> None:
        """At most `checks` checks per `window_s` seconds per identity; `checks` 0: not limited."""
        self._checks = checks
        self._window_s = window_s
        self._clock = clock
        self._window = -1
        self._counts: dict[str, int] = {}

    def admit(self, identity: str, cost: int) -> None:
        """Counts `cost` checks for `identity`; RateLimited once past its rate in this window (nothing is asked)."""
        if self._checks == 0 or cost == 0:
            return
        window = int(self._clock() // self._window_s)
        if window != self._window:  # a new window: every count starts again, and the old ones are dropped
            self._window, self._counts = window, {}
        count = self._counts.get(identity, 0) + cost
        if count > self._checks:
            raise RateLimited(
                f"caller {identity!r} may check at most {self._checks} items per {self._window_s} s here; slow down"
            )
        self._counts[identity] = count
