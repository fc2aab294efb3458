"""The summary table's columns and the options of the commands that print it: light (the
console and typer), so ``status`` draws a kept summary (``kept_view``) without the report's
models, which ``summary`` imports."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.cli import console

__all__ = ["HELD_BY", "SERVICES", "SHORT_COMMIT", "SUMMARY", "JsonOption", "WideOption"]

# Ids are keys (never cut), and so is the status (folded between words, never dropped); at
# 80 columns attempts, time and error give way first.
SUMMARY = (
    console.Column("task", key=True),
    console.Column("status", key=True, wraps=True),
    console.Column("adapter"),
    console.Column("attempts", drop=3),
    console.Column("branch", key=True),
    console.Column("merged", key=True),
    console.Column("time", drop=2),
    console.Column("error", wraps=True, drop=1),
)
HELD_BY = console.Column("held by", wraps=True, drop=1)
# Shown when a task of the run has services (a run's ``services:``): ``web ready, db failed``.
SERVICES = console.Column("services", wraps=True, drop=1)
SHORT_COMMIT = 10  # what git accepts for a commit of any repository of ordinary size

JsonOption = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
WideOption = Annotated[
    bool, typer.Option("--wide", help="Show every column whole (full commit ids), however wide.")
]
