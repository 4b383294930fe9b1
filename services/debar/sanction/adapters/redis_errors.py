"""Redis failures as the sanction service sees them: a Redis that does not answer is StoreUnavailable, behind a
circuit breaker shared by every adapter that talks to the same Redis."""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, ParamSpec, TypeVar

from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from debar.common.circuit import CircuitBreaker, CircuitOpen
from debar.sanction.app.ports import StoreUnavailable

# What a Redis says while it fails over (a slot without a master, a demoted master, a slot on the move, a cluster
# client that cannot learn the map): it does not answer for now, as a dead one does; the call is not retried
# here, the caller's next one finds the new master.
# A cluster pipeline's ClusterError is one of its commands redirected past redis-py's retries (an ASK of a slot on the
# move, say).
FAILING_OVER = (ClusterDownError, TryAgainError, ReadOnlyError, AskError, RedisClusterException, ClusterError)

# What a Redis Cluster node says when a script reaches a key (not among its declared KEYS: the allow-cross-slot-keys
# scripts) of a slot being migrated that is not, or no longer, on this node: the slot's keys are split between two
# nodes for a moment. Like TRYAGAIN, it does not answer for now; the script stopped at that key.
NON_LOCAL_KEY = "non local key"


def slot_on_the_move(error: RedisError) -> bool:
    return isinstance(error, ResponseError) and NON_LOCAL_KEY in str(error)


P = ParamSpec("P")
_inside: contextvars.ContextVar[bool] = contextvars.ContextVar("inside_guarded_call", default=False)
T = TypeVar("T")


def unavailable_on_redis_error(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """A Redis that does not answer becomes StoreUnavailable; a script or protocol error stays a bug. Calls pass
    the store's circuit breaker, so once Redis has failed repeatedly callers fail fast instead of queueing."""

    @functools.wraps(method)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
        if _inside.get():  # called by a guarded method (decide resolving texts): one call to the breaker
            return await method(*args, **kwargs)
        token = _inside.set(True)
        try:
            return await _through_breaker(method, *args, **kwargs)
        finally:
            _inside.reset(token)

    return guarded


async def _through_breaker(method: Callable[P, Coroutine[Any, Any, T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """The outermost guarded call: in a half-open circuit it is the one trial, whatever it calls inside."""
    breaker: CircuitBreaker = args[0]._breaker  # type: ignore[attr-defined]  # every adapter has one
    try:
        breaker.before_call()
    except CircuitOpen as error:
        raise StoreUnavailable(str(error)) from error
    try:
        result = await method(*args, **kwargs)
    except (RedisConnectionError, RedisTimeoutError, OSError, *FAILING_OVER) as error:
        breaker.failed()
        raise StoreUnavailable(f"redis: {error}") from error
    except StoreUnavailable:  # NotReplicated among them: later calls fail fast instead of each waiting
        breaker.failed()
        raise
    except RedisError as error:
        breaker.succeeded()  # Redis answered, if with an error: it is up
        if slot_on_the_move(error):
            raise StoreUnavailable(f"redis: a slot on the move ({error})") from error
        raise
    except BaseException:
        breaker.abandoned()  # cancelled (the caller's deadline passed): no news about Redis
        raise
    breaker.succeeded()
    return result


@contextlib.contextmanager
def unavailable_on_redis_down() -> Iterator[None]:
    """The same translation for a whole block, for callers that use Redis outside the adapters' guarded methods
    (walking a chain, re-keying): a Redis that does not answer is StoreUnavailable. File errors stay as they are."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, *FAILING_OVER) as error:
        raise StoreUnavailable(f"redis: {error}") from error
    except ResponseError as error:
        if slot_on_the_move(error):
            raise StoreUnavailable(f"redis: a slot on the move ({error})") from error
        raise
