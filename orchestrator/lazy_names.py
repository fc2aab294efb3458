"""A package's names loaded on first use (PEP 562): importing one part of a package does not
import all of it, while ``from package import Name`` works as ever.

Each public name is written once, in the package's ``_NAMES`` (module -> the names it
defines)::

    _NAMES = {"package.module": ("Name", ...), ...}
    __all__, __getattr__, __dir__ = lazy_names.exports(__name__, _NAMES)

Type checkers cannot read that table: they read the package's ``__init__.pyi``, which
``orchestrator.lazy_stubs`` writes from it (``python -m orchestrator.lazy_stubs``; a test fails
while a stub is stale).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

__all__ = ["exports"]


def exports(
    package: str, names: Mapping[str, Sequence[str]], eager: Collection[str] = ()
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """The package's ``__all__`` (every name of ``names``, sorted), ``__getattr__`` (each name
    imported from its module once, then a plain attribute) and ``__dir__``.

    The names of a module in ``eager`` are imported and bound now (what the package needs at
    once anyway); the others on first use."""
    where: dict[str, str] = {}
    for module, defined in names.items():
        if isinstance(defined, str):
            raise TypeError(f"{package}: the names of {module} must be a tuple, not {defined!r}")
        for name in defined:
            if name in where:
                raise ValueError(
                    f"{package}: {name!r} is listed under both {where[name]} and {module}"
                )
            where[name] = module
    unknown = set(eager) - set(names)
    if unknown:
        raise ValueError(f"{package}: eager modules {sorted(unknown)} list no names")
    all_ = sorted(where)

    def getattr_(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def dir_() -> list[str]:
        return sorted({*vars(sys.modules[package]), *all_})

    for module in eager:
        for name in names[module]:
            getattr_(name)
    return all_, getattr_, dir_
