"""The functions a tracker is declared with: callables, or dotted paths imported on first use.

Importing lazily keeps a declaration (in ``models.py``, ``usage.py`` or settings) from
importing other modules, or failing, at import time; a broken path is reported by the system
checks and, if a save still reaches it, kept as a failed ledger row.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

from django.utils.module_loading import import_string


class Resolver:
    """A user function given as a callable or as the dotted path to one."""

    def __init__(self, target: object) -> None:
        self.target = target

    def __repr__(self) -> str:
        name = getattr(self.target, "__qualname__", None)
        return name if isinstance(name, str) else repr(self.target)

    @cached_property
    def function(self) -> Callable[..., Any]:
        target: object = import_string(self.target) if isinstance(self.target, str) else self.target
        if not callable(target):
            raise TypeError(
                f"{self.target!r} is not callable; pass a function or the dotted path to one."
            )
        return target

    def __call__(self, *args: Any) -> Any:
        return self.function(*args)

    def problem(self) -> str | None:
        """Why this resolver can't be called (for the system checks), or None."""
        try:
            self.function  # noqa: B018  (imports the path)
        except (ImportError, TypeError) as exc:
            return str(exc)
        return None


def optional_resolver(target: object) -> Resolver | None:
    """A resolver for an optional function argument: None when none was given."""
    return None if target is None else Resolver(target)
