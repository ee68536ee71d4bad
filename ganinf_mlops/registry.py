"""A tiny name -> object registry, so CLI names map to datasets, problems, models, methods,
optimizers and presets, and one message says what the choices are."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from ganinf_mlops.errors import ConfigError

T = TypeVar("T")


def check_choice(kind: str, name: object, choices: Iterable[str]) -> None:
    """The one "unknown X; choose from" error, for registries and fixed option sets alike."""
    choices = list(choices)
    if name not in choices:
        listed = ", ".join(choices) or "(none registered)"
        raise ConfigError(f"unknown {kind} {name!r}; choose from: {listed}")


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
        check_choice(self.kind, name, self.names())
        return self._items[name]

    def check(self, name: str) -> None:
        check_choice(self.kind, name, self.names())

    def names(self) -> list[str]:
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(sorted(self._items.items()))

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)
