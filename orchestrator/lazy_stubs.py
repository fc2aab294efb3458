"""The ``__init__.pyi`` of each package whose names load on first use (``lazy_names``), written
from the one table of its names (``_NAMES`` in its ``__init__.py``).

A type checker does not run ``__getattr__``: it reads the stub, where every name is a plain
import from the module that defines it and ``__all__`` makes it a re-export (mypy strict has
no implicit re-export). ``python -m orchestrator.lazy_stubs`` rewrites the stubs;
``--check`` only says which are stale (exit status 1), as the test of the public API does.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["PACKAGES", "main", "stale", "stub_path", "stub_text"]

# the packages whose names load on first use: each has a `_NAMES` and an `__init__.pyi`
PACKAGES = ("orchestrator", "orchestrator.events", "orchestrator.state")

_HEADER = (
    "# Written by `python -m orchestrator.lazy_stubs` from `_NAMES` in __init__.py: do not edit.\n"
    "# Type checkers read this stub; at run time each name loads on first use (lazy_names).\n"
)


def _names_of(package: str) -> Mapping[str, Sequence[str]]:
    names = vars(importlib.import_module(package)).get("_NAMES")
    if not isinstance(names, Mapping):
        raise TypeError(f"{package} has no `_NAMES` table (module -> its names): nothing to stub")
    return names


def _member_key(name: str) -> tuple[int, str, str]:
    """ruff's (isort's) order of imported names: constants, then classes, then the rest, each
    without regard to case."""
    kind = 0 if len(name) > 1 and name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name.lower(), name


def _lines(head: str, items: Sequence[str], tail: str) -> list[str]:
    # always one item a line with a trailing comma: ruff's formatter and isort keep it so
    return [head, *(f"    {item}," for item in items), tail]


def stub_text(package: str) -> str:
    """The ``__init__.pyi`` that ``package``'s ``_NAMES`` makes."""
    names = _names_of(package)
    lines = [_HEADER]
    for module in sorted(names, key=str.lower):
        lines += _lines(f"from {module} import (", sorted(names[module], key=_member_key), ")")
    every = sorted(name for defined in names.values() for name in defined)
    lines += ["", *_lines("__all__ = [", [f'"{name}"' for name in every], "]")]
    return "\n".join(lines) + "\n"


def stub_path(package: str) -> Path:
    """Where ``package``'s stub is: beside its ``__init__.py``."""
    init = importlib.import_module(package).__file__
    if init is None:
        raise ValueError(f"{package} has no __init__.py beside which to keep a stub")
    return Path(init).with_suffix(".pyi")


def stale() -> list[str]:
    """The packages whose stub is missing or is not what their ``_NAMES`` make."""
    out = []
    for package in PACKAGES:
        path = stub_path(package)
        if not path.is_file() or path.read_text(encoding="utf-8") != stub_text(package):
            out.append(package)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.lazy_stubs", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report stale stubs")
    args = parser.parse_args(argv)
    behind = stale()
    if args.check:
        for package in behind:
            print(f"{stub_path(package)} is stale: python -m orchestrator.lazy_stubs")
        return 1 if behind else 0
    for package in behind:
        stub_path(package).write_text(stub_text(package), encoding="utf-8")
        print(f"wrote {stub_path(package)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
