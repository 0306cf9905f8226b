"""Named registries: the one mechanism behind every extension point.

Objectives, optimizers, schedules, evaluators, sentence splitters, ... each keep a
:class:`Registry`. Adding one is a decorator on a new class or function; looking one up by a
name from a config gives the same error everywhere: what is unknown, the closest known name,
and the full list.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from synthlm.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping of names to implementations, filled by :meth:`register`."""

    def __init__(self, what: str) -> None:
        self.what = what  # "objective", "optimizer", ...: used in error messages
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@OBJECTIVES.register("clm")``."""

        def decorate(item: T) -> T:
            if name in self._items and self._items[name] is not item:
                raise ValueError(f"{self.what} '{name}' is registered twice")
            self._items[name] = item
            return item

        return decorate

    def unknown(self, name: str) -> str:
        """The message for a name that is not registered (for ConfigError or a validator)."""
        close = difflib.get_close_matches(name, self._items, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown {self.what} '{name}'{hint}; known: {', '.join(sorted(self._items))}"

    def get(self, name: str) -> T:
        if name not in self._items:
            raise ConfigError(self.unknown(name))
        return self._items[name]

    def check(self, name: str) -> str:
        """For pydantic validators: raise ValueError (which the config system locates)."""
        if name not in self._items:
            raise ValueError(self.unknown(name))
        return name

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __delitem__(self, name: str) -> None:
        """Unregister (tests that register a temporary entry clean up with ``del``)."""
        del self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)
