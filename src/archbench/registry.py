"""A small timm-style registry: a decorator fills a dict; unknown names fail with the known ones listed.

Entries can be registered lazily as ``"module:attribute"`` strings so that torch-free code (the
Architecture validator, the leaderboard) can ask which names exist without importing the modules
that implement them.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from archbench.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named extension point (residual types, attention patterns, strategies, tasks, ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def register(self, name: str, obj: T | None = None, **meta: Any) -> Any:
        """Register ``obj`` under ``name``; without ``obj`` this is a decorator.

        ``meta`` holds torch-free facts about the entry (e.g. ``uses_window=True``) that can be read
        with :meth:`meta` without importing the entry.
        """

        def add(o: T) -> T:
            existing = self._entries.get(name)
            if existing is not None and not isinstance(existing, str) and existing is not o:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = o
            self._meta[name] = {**self._meta.get(name, {}), **meta}
            return o

        if obj is not None:
            return add(obj)
        return add

    def register_lazy(self, name: str, target: str, **meta: Any) -> None:
        """Register ``name`` as ``"package.module:attr"``, imported on first :meth:`get`."""
        self._entries[name] = target
        self._meta[name] = dict(meta)

    def get(self, name: str) -> T:
        """The entry called ``name``; unknown names raise with the list of known ones."""
        try:
            entry = self._entries[name]
        except (KeyError, TypeError):
            raise UnknownNameError(self.unknown_message(name)) from None
        if isinstance(entry, str):
            module, _, attr = entry.partition(":")
            importlib.import_module(module)  # importing registers the real object over the string
            entry = self._entries[name]
            if isinstance(entry, str):
                entry = getattr(importlib.import_module(module), attr)
                self._entries[name] = entry
        return entry  # type: ignore[return-value]

    def meta(self, name: str) -> dict[str, Any]:
        """Torch-free metadata given at registration."""
        if name not in self._entries:
            raise UnknownNameError(self.unknown_message(name))
        return dict(self._meta.get(name, {}))

    def unknown_message(self, name: object) -> str:
        known = ", ".join(self.names())
        close = difflib.get_close_matches(str(name), self.names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown {self.kind} {name!r}{hint}; known: {known}"

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return [(n, self.get(n)) for n in self.names()]
