"""``tracking_disabled()``: switch trackers off for a block or a function.

The switch is a ``ContextVar``, so it is per thread and per asyncio task: disabling tracking
while loading a fixture in one thread (or task) never silences a request served by another.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any, TypeVar, cast

_disabled: ContextVar[bool] = ContextVar("billflow_usage_tracking_disabled", default=False)

F = TypeVar("F", bound=Callable[..., Any])


def tracking_is_disabled() -> bool:
    """Whether trackers should skip the save or delete happening now."""
    return _disabled.get()


class tracking_disabled:
    """Record nothing from trackers inside this block or decorated function.

    Use it for fixtures, data migrations and imports::

        with billflow_usage.tracking_disabled():
            Order.objects.create(...)  # no usage recorded

        @billflow_usage.tracking_disabled()
        def import_orders(rows): ...

    Decorating an ``async def`` disables tracking while the coroutine runs, not merely while
    it is created. Calls of ``record_usage()`` are explicit and still record.
    """

    def __init__(self) -> None:
        # A stack, so one instance can be re-entered (a decorated recursive function).
        self._tokens: list[Token[bool]] = []

    def __enter__(self) -> None:
        self._tokens.append(_disabled.set(True))

    def __exit__(self, *exc_info: object) -> None:
        _disabled.reset(self._tokens.pop())

    def __call__(self, func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with tracking_disabled():
                    return await func(*args, **kwargs)

            return cast(F, run_async)

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            with tracking_disabled():
                return func(*args, **kwargs)

        return cast(F, run)
