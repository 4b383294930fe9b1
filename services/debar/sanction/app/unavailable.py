"""A store that did not answer, as the use cases report it: Unavailable (UNAVAILABLE on the wire) with a plain
message. The adapter's exception text (Redis's address, client class names) goes to the debug log only."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from debar.common.errors import Unavailable
from debar.sanction.app.ports import StoreUnavailable

P = ParamSpec("P")
T = TypeVar("T")
log = logging.getLogger("debar.store")


def unavailable_as(what: str) -> Callable[[Callable[P, Coroutine[Any, Any, T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """Turns StoreUnavailable from `method` into Unavailable("<what> is unreachable; try again shortly")."""

    def decorate(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        @functools.wraps(method)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return await method(*args, **kwargs)
            except StoreUnavailable as error:
                log.debug("%s: %s", method.__qualname__, error)  # health and metrics already say Redis is down
                raise Unavailable(f"{what} is unreachable; try again shortly") from None

        return guarded

    return decorate
