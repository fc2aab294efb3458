"""``council clean FILE [--older-than 7d]``: tidy up after finished runs.

1. Finished sessions (completed, failed, cancelled) last written before the cutoff are removed
   from the state store with their tasks and checkpoints. Active and interrupted sessions are
   never removed, whatever their age. The event log's archives older than every session
   kept go with them (``event_archive``; on PostgreSQL, the events older than those).
2. Worktrees are pruned as ``council worktrees prune`` does: those deleted by hand lose their
   metadata, those of finished runs are removed under the safety rules (an unmerged branch is
   kept and its tip saved under ``refs/council/rescue/``), so no work is lost.
3. Lock files of records that are gone, and what crashed writers left behind, are removed.
4. Keyed records that expired (``put_record``'s ``ttl``: a workstation's presence record
   once it stopped refreshing it) are removed.

It prints what it removed, in counts (``--json`` for the details).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.cli import console, event_loop
from orchestrator.cli.meant import meant_config
from orchestrator.cli.store_access import open_store
from orchestrator.cli.worktrees_cmd import PruneOutcome, describe_prune, prune_dead
from orchestrator.config.durations import format_duration, parse_duration
from orchestrator.config.load import load_config
from orchestrator.config.run import RunConfig
from orchestrator.errors import UsageError

__all__ = ["clean"]

_DAY = 86400.0


def clean(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="The run config (YAML) of the repository (default: the one meant here)."
        ),
    ] = None,
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than", help="Remove finished sessions older than this (7d, 12h, 90m)."
        ),
    ] = "7d",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Remove old finished sessions and the worktrees of finished runs; never unmerged work."""
    try:
        seconds = parse_duration(older_than)
    except ValueError as exc:
        raise UsageError(f"--older-than: {exc}") from None
    config = load_config(meant_config(file, "clean"))
    removed, locks, expired, outcome = event_loop.run(_clean, config, seconds)
    if as_json:
        result: dict[str, Any] = {
            "older_than_seconds": seconds,
            "sessions_removed": removed,
            "stale_locks_removed": locks,
            "expired_records_removed": expired,
            "worktrees": outcome.as_dict(),
        }
        console.print_lines(json.dumps(result, indent=2))
        return
    lines, warnings = describe_prune(outcome, config.repo, config.base_branch)
    for warning in warnings:
        console.print_warning(warning)
    if lines:
        console.print_lines("\n".join(lines))
    report = outcome.report
    kept = sum(1 for r in report.removed if not r.branch_deleted)
    console.print_success(
        f"removed {_count(removed, 'finished session')} older than {format_duration(seconds)}, "
        f"{_count(len(report.removed), 'worktree')} of finished runs "
        f"({_count(kept, 'unmerged branch', 'unmerged branches')} kept), "
        f"{_count(len(report.pruned), 'vanished worktree')}, "
        f"{_count(locks, 'stale lock file')} and {_count(expired, 'expired record')}"
    )


async def _clean(config: RunConfig, seconds: float) -> tuple[int, int, int, PruneOutcome]:
    async with open_store(config) as store:
        removed = await store.cleanup_old_sessions(seconds / _DAY)
        outcome = await prune_dead(config, store)
        locks = await store.clean_stale_locks()
        expired = await store.purge_expired()
        return removed, locks, expired, outcome


def _count(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {plural or word + 's'}"
