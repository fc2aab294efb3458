"""The summary table's cost (``council run``/``resume``/``status`` on a terminal) as a ratio to
printing the same rows as plain text, for 64, 256 and 1,024 tasks.

Both sides print to a terminal-like console writing into memory (rich's ``force_terminal``,
120 columns), the rows of a finished run as ``summary`` makes them (ids, status, adapter,
attempts, branch, commit, time, an error on every tenth). The table side is
``console.print_table`` (the layout measured once, then a boxed rich table with fixed widths);
the floor joins the same cells into lines and writes them. Rounds alternate; medians compared.
Target: the table costs what printing its rows costs, a small constant factor at every size.

    python bench/summary_bench.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time

from rich.console import Console

from orchestrator.cli import console
from orchestrator.cli.status.summary import SUMMARY


def rows(count: int) -> list[list[str]]:
    return [
        [
            f"t{n}",
            "done" if n % 10 else "failed",
            "claude",
            "1",
            f"council/t{n}/1",
            f"{n:010x}",
            f"{n % 60 + 0.5:.1f}s",
            "" if n % 10 else "the build's verify command failed: tests/test_x.py::test_y",
        ]
        for n in range(count)
    ]


def table_side(cells: list[list[str]]) -> float:
    console.stdout = Console(
        file=io.StringIO(), width=120, force_terminal=True, highlight=False, soft_wrap=True
    )
    started = time.perf_counter()
    console.print_table(SUMMARY, cells)
    return time.perf_counter() - started


def plain_side(cells: list[list[str]]) -> float:
    out = io.StringIO()
    started = time.perf_counter()
    out.write("\n".join("  ".join(row) for row in cells) + "\n")
    return time.perf_counter() - started


def main(rounds: int, as_json: bool) -> None:
    saved = console.stdout
    figures: dict[str, dict[str, float]] = {}
    try:
        for count in (64, 256, 1024):
            cells = rows(count)
            table_side(cells)  # imports and caches warmed
            tables, plains = [], []
            for _ in range(rounds):
                tables.append(table_side(cells))
                plains.append(plain_side(cells))
            table, plain = statistics.median(tables), statistics.median(plains)
            figures[str(count)] = {"table_ms": table * 1e3, "plain_ms": plain * 1e3}
            if as_json:
                continue
            print(
                f"{count:5d} rows  table {table * 1e3:7.2f} ms ({table / count * 1e6:5.1f} us/row)"
                f"   plain {plain * 1e3:6.3f} ms   ratio {table / plain:6.0f}x"
            )
    finally:
        console.stdout = saved
    if as_json:
        print(json.dumps({"rows": figures}, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="2 rounds (CI)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    main(2 if args.quick else args.rounds, args.json)
