"""The size guard: a module that outgrows a room, or a room that outgrows a floor, fails here.

Every Python module of the package (``orchestrator/``, ``adapters/``), counted in lines: none
over ``LARGEST``, the median at most ``MEDIAN``, no package (a directory's own modules,
``__init__`` included) over ``PER_PACKAGE``. A feature that needs more grows a room of its own
(docs/architecture.md says where), not a hub.
"""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LARGEST, MEDIAN, PER_PACKAGE = 520, 125, 25


def _modules() -> dict[Path, int]:
    found = {}
    for top in ("orchestrator", "adapters"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if "__pycache__" not in path.parts:
                with path.open("rb") as lines:
                    found[path.relative_to(ROOT)] = sum(1 for _ in lines)
    return found


def test_no_module_outgrows_a_room() -> None:
    sizes = _modules()
    assert len(sizes) > 100, "the package's modules were not found"
    over = {str(path): n for path, n in sizes.items() if n > LARGEST}
    assert not over, f"modules over {LARGEST} lines (split by meaning): {over}"
    assert statistics.median(sizes.values()) <= MEDIAN


def test_no_package_outgrows_a_floor() -> None:
    per_package = Counter(path.parent for path in _modules())
    crowded = {str(package): n for package, n in per_package.items() if n > PER_PACKAGE}
    assert not crowded, f"packages over {PER_PACKAGE} modules (group them in rooms): {crowded}"
