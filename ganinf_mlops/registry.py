"""A tiny name -> object registry, so CLI names map to datasets, metrics, presets and methods."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from ganinf_mlops.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named objects of one `kind` (used in error messages, e.g. "dataset")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, obj: T) -> T:
        # Silent replacement would make the meaning of a name depend on import order.
        if name in self._items:
            raise ConfigError(f"{self.kind} {name!r} is already registered")
        self._items[name] = obj
        return obj

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of `add`; returns the object unchanged."""

        def decorate(obj: T) -> T:
            return self.add(name, obj)

        return decorate

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            choices = ", ".join(self.names()) or "(none registered)"
            raise ConfigError(f"unknown {self.kind} {name!r}; choose from: {choices}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)
