"""What one CLI invocation ends as (``CliRun``), its outcome told by its adapter
(``classified``), and the run of a CLI stopped before its spawn (``not_started``): a stop (the
task's ``cancel``, the spend meter's ``halt``) that comes while the run is being made ready
starts no CLI at all, rather than one started only to be stopped at once."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

from orchestrator.adapter import Adapter, AgentEvent, Outcome, OutcomeKind, ProcessResult
from orchestrator.process.output import LogSink

__all__ = ["CliRun", "classified", "close_log", "not_started"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CliRun:
    """One finished CLI invocation."""

    argv: list[str]  # as run, with secrets shown as ***
    events: list[AgentEvent]  # significant events and the most recent others (bounded)
    result: ProcessResult
    outcome: Outcome
    log_path: Path
    lines: int  # lines read from stdout and stderr
    truncated_lines: int  # lines longer than the cap, of which only the head was kept
    dropped_events: int  # events let go of to bound memory (on_event saw them all)
    log_truncated: bool
    survivors: tuple[str, ...] = ()  # processes it left running after it exited, now stopped

    @property
    def ok(self) -> bool:
        return self.outcome.ok

    @property
    def native_session_id(self) -> str | None:
        return self.outcome.native_session_id


def classified(adapter: Adapter, result: ProcessResult, events: list[AgentEvent]) -> Outcome:
    try:
        return adapter.classify(result, events)
    except Exception as exc:
        log.exception("adapter %r: classify raised", adapter.name)
        return Outcome(
            kind=OutcomeKind.FAILED,
            message=f"adapter {adapter.name!r} could not classify the run: "
            f"{type(exc).__name__}: {exc}",
        )


async def close_log(sink: LogSink, footer: str) -> None:
    """The run's log closed with ``footer`` where the run ends early (not started, not
    recorded, cancelled): in a worker thread, as the event loop writes no file, and whatever
    cancels the caller meanwhile. A log that cannot be written is no reason to lose the error
    that ended the run."""
    with anyio.CancelScope(shield=True), contextlib.suppress(OSError):
        await anyio.to_thread.run_sync(sink.close, footer)


async def not_started(adapter: Adapter, argv: list[str], sink: LogSink) -> CliRun:
    """The run of a CLI whose stop came before its spawn: ``cancelled``, as a CLI stopped
    gracefully is, with no process, no output and its log saying so."""
    await close_log(sink, "not started: stopped before the CLI's start")
    result = ProcessResult(exit_code=None, cancelled=True, seconds=0.0)
    return CliRun(
        argv=argv,
        events=[],
        result=result,
        outcome=classified(adapter, result, []),
        log_path=sink.path,
        lines=0,
        truncated_lines=0,
        dropped_events=0,
        log_truncated=False,
    )
