"""Who is asking, by network address, and how often: the person's lookup is limited per client address, so that
guessing decision ids or ID numbers is slow. Pure (the clock is a parameter)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

Networks = Sequence[IPv4Network | IPv6Network]
WINDOW_S = 60
# Addresses remembered in one window (bounded memory); once full, a new address waits for the next window, so a
# flood from many addresses cannot wipe the counts of the others.
MAX_TRACKED = 100_000


def trusted(address: str, networks: Networks) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)


def client_address(peer: str, forwarded_for: str | None, proxies: Networks) -> str:
    """The client's address: the peer itself, unless the peer is a trusted proxy; then the last address in
    X-Forwarded-For that is not a trusted proxy (the ones before it could be made up by the client)."""
    if not forwarded_for or not trusted(peer, proxies):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not trusted(hop, proxies):
            return hop
    return hops[0] if hops else peer


class RateLimiter:
    """At most `per_minute` attempts per address in each minute (fixed windows)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.time) -> None:
        self._limit = per_minute
        self._clock = clock
        self._window = -1
        self._counts: dict[str, int] = {}

    def allow(self, address: str) -> bool:
        """Counts the attempt; False when it is over the limit."""
        window = int(self._clock() // WINDOW_S)
        if window != self._window:
            self._window, self._counts = window, {}
        if address not in self._counts and len(self._counts) >= MAX_TRACKED:
            return False
        count = self._counts.get(address, 0) + 1
        self._counts[address] = count
        return count <= self._limit

    def retry_after(self) -> int:
        """Seconds until the next window."""
        return WINDOW_S - int(self._clock()) % WINDOW_S
