"""One small typed registry class; one instance per kind of component.

Every component the suite can name (datasets, noise generators, detectors,
refurbishers, trainers, methods, protocols) lives in a `Registry`, so there is
one way to add a thing (`@registry.register("name")`), one way to create it by
name (`registry.get("name")`) and one way to ask what exists (`names()`).
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from bench.errors import BenchError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names -> objects of one kind; registering a taken name is an error."""

    def __init__(self, kind: str, plural: str | None = None) -> None:
        self.kind = kind
        self.plural = plural or kind + "s"
        self._items: dict[str, T] = {}
        self._origin: dict[str, str] = {}
        _registries.append(self)

    def register(self, name: str, obj: T | None = None, *, origin: str = "") -> Callable[[T], T] | T:
        """Register `obj` under `name`; without `obj`, return a decorator."""
        if obj is None:

            def decorator(target: T) -> T:
                self._add(name, target, origin)
                return target

            return decorator
        self._add(name, obj, origin)
        return obj

    def _add(self, name: str, obj: T, origin: str) -> None:
        if not name or name != name.strip() or any(c in name for c in ",: /"):
            raise ValueError(f"invalid {self.kind} name {name!r}: no spaces, commas, colons or slashes")
        if name in self._items:
            where = self._origin.get(name) or "another module"
            raise ValueError(f"{self.kind} name {name!r} is already registered (by {where})")
        self._items[name] = obj
        self._origin[name] = origin or getattr(obj, "__module__", "")

    def get(self, name: str) -> T:
        """The object registered as `name`, or a BenchError with a did-you-mean."""
        _ensure_plugins()
        try:
            return self._items[name]
        except KeyError:
            raise BenchError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        """One line: the unknown name, the closest known one, where to look."""
        close = difflib.get_close_matches(name, list(self._items), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown {self.kind} '{name}'{hint} (see: bench list {self.plural})"

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted registered names matching a shell-style wildcard."""
        _ensure_plugins()
        return sorted(n for n in self._items if fnmatch.fnmatchcase(n, pattern))

    def origin(self, name: str) -> str:
        """The module that registered `name`."""
        self.get(name)
        return self._origin[name]

    def __contains__(self, name: object) -> bool:
        _ensure_plugins()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())


#: every registry made, so that `taken_back_on_error` can undo a failed import's registrations in all of them
_registries: list[Registry] = []


@contextmanager
def taken_back_on_error() -> Iterator[None]:
    """If the block raises, every name it registered (in any registry) is taken back before the error goes on.

    A plugin that fails halfway through its import must not leave half its components behind: a lookup would find
    them, and importing the fixed plugin again would be refused as registering taken names.
    """
    before = {registry: set(registry._items) for registry in _registries}
    try:
        yield
    except BaseException:
        for registry in _registries:  # a registry made inside the block had nothing before it
            for name in set(registry._items) - before.get(registry, set()):
                del registry._items[name]
                registry._origin.pop(name, None)
        raise


#: called before every lookup to fill the registries; `bench.plugins` installs its loader here on import, so this
#: lowest layer never imports the layers above it (`import bench` imports bench.plugins)
_loaders: list[Callable[[], None]] = []


def add_loader(loader: Callable[[], None]) -> None:
    """Have `loader` run before every registry lookup (it must be cheap once done: `load_plugins` is)."""
    if loader not in _loaders:
        _loaders.append(loader)


def _ensure_plugins() -> None:
    for loader in _loaders:
        loader()
