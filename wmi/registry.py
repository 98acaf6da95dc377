"""Named entries that carry their own facts: the one list behind every ``--kind``-style choice.

A :class:`Registry` maps a name to a dataclass entry. Heavy objects (a layer class, a
metric function) are written as ``"module:attribute"`` references and imported only when
:func:`load` asks for them, so that the command line can list, validate and document every
choice without importing torch. The registries themselves live in :mod:`wmi.kinds`.

This module imports nothing beyond the standard library.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from wmi.errors import WmiError


@dataclass(eq=False)
class Entry:
    """The facts every entry has. Treat entries as read-only; they compare by identity.

    (Plain ``eq=False`` dataclasses: ``frozen`` and ``__eq__`` would each cost ``wmi --help``
    start-up time, about a millisecond per class.)

    Attributes:
        name: what users type (``--conv weighted``).
        help: a few words for ``--help`` and the docs.
    """

    name: str
    help: str


E = TypeVar("E", bound=Entry)


class Registry(Generic[E]):
    """An ordered ``name -> entry`` table.

    Args:
        what: what an entry is, for messages ("conv kind", "metric").
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, E] = {}

    def register(self, entry: E) -> E:
        """Add ``entry``; a name registered twice is a programming error (ValueError)."""
        if entry.name in self._entries:
            raise ValueError(f"{self.what} {entry.name!r} is already registered")
        self._entries[entry.name] = entry
        return entry

    def unregister(self, name: str) -> E:
        """Remove and return an entry (plugins and tests that registered one)."""
        return self._entries.pop(name)

    def __getitem__(self, name: str) -> E:
        try:
            return self._entries[name]
        except KeyError:
            raise WmiError(
                f"unknown {self.what} {name!r}; choose from {', '.join(self._entries)}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> tuple[str, ...]:
        """Every name, in registration order."""
        return tuple(self._entries)

    def entries(self) -> tuple[E, ...]:
        """Every entry, in registration order."""
        return tuple(self._entries.values())

    def describe(self) -> str:
        """``"a (help of a), b (help of b)"`` for ``--help`` texts."""
        return ", ".join(f"{e.name} ({e.help})" if e.help else e.name for e in self.entries())

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, {list(self._entries)})"


def load(ref: Any) -> Any:
    """Resolve a ``"package.module:attribute"`` reference; any other object is returned as is.

    Entries registered from user code may hold the object itself instead of a reference.
    """
    if not isinstance(ref, str):
        return ref
    module, _, attribute = ref.partition(":")
    return getattr(importlib.import_module(module), attribute)
