"""Named crash points: the orchestrator kills itself with SIGKILL where a test tells it to.

``COUNCIL_CRASH_AT=<point>[:<nth>]`` arms one point: the ``nth`` time (default 1) the process
reaches ``crash_point(<point>)`` it writes one line to stderr (``council: crash point <point>
reached (<nth>), SIGKILL``) and sends itself SIGKILL, the death nothing can catch or clean up
after. The crash tests (``tests/e2e/test_crash_points.py``) start a real ``council run`` with each
point armed, then check that ``council resume`` finishes the work with nothing lost, repeated
or left blocking.

The variable is read once, when this module is first imported. Unset (the normal case), a
``crash_point`` call is one module-global test and a return, so the calls stay in the product
code for good. A value naming no known point (or a bad count) arms nothing; ``check_armed()``,
called where a council starts (``Council.__aenter__``), refuses it with a ``ConfigError`` that
lists the known points, so a typo never passes as a run that "survived" its crash.

Two points are reached by every step of their kind, whatever the command or record, so a
test can sweep them (``tests/e2e/test_crash_sweep.py``): ``git.ran`` after every git command the
orchestrator runs (``orchestrator.git.repo``), ``write.replaced`` after every durable state write.
``COUNCIL_CRASH_TRACE=<file>`` appends one line per arrival at any point, ``<point>\t<what>``
(the git subcommand, the file written), armed or not: a run traced once tells the sweep how
many steps of each kind there are and what each k is.

``COUNCIL_CRASH_SIGNAL=SIGSTOP`` makes the armed point pause the process instead (``council:
crash point <point> reached (<nth>), SIGSTOP``): a workstation frozen past its lease (a laptop
lid, a long GC pause) while its CLIs go on, until the test sends SIGCONT. The fence sweep
(``tests/e2e/test_fence_sweep.py``) pauses a team run at every kind of step that way.
``COUNCIL_CRASH_SIGNAL=SIGINT`` is a Ctrl-C there instead (the stop sweep,
``tests/e2e/test_stop_sweep.py``: the run stops, its sessions commit their work, and ``council
resume`` must land every edit once). Any other value arms nothing and is refused like a
mistyped point.

Points may be reached from worker threads (the state store writes there); counting is locked.
"""

from __future__ import annotations

import functools
import os
import signal
import threading
from dataclasses import dataclass

from orchestrator.errors import ConfigError, ConfigIssue

__all__ = ["ENV", "POINTS", "SIGNAL_ENV", "TRACE_ENV", "check_armed", "crash_point"]

ENV = "COUNCIL_CRASH_AT"
TRACE_ENV = "COUNCIL_CRASH_TRACE"
SIGNAL_ENV = "COUNCIL_CRASH_SIGNAL"
_SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGSTOP": signal.SIGSTOP, "SIGINT": signal.SIGINT}

POINTS: dict[str, str] = {
    "claim.before_record": "a claim is about to be written (its fencing token is already taken)",
    "claim.recorded": "a claim has just been written, the task marked running",
    "write.temp_written": "a durable state write: the temp file holds the new bytes, unsynced",
    "write.fsynced": "a durable state write: the temp file is synced, not yet in place",
    "write.replaced": "a durable state write: the new file is in place, its directory unsynced",
    "git.ran": "a git command has just finished, before its caller saw the result",
    "cli.spawned": "a CLI has just been started, before anything about it is recorded",
    "ledger.opened": "a CLI call's ledger record was just opened, the CLI not yet started",
    "ledger.closing": "a CLI call has ended and said what it spent, its record not yet closed",
    "ledger.closed": "a CLI call's ledger record was just closed, its phase not yet recorded",
    "phase.ended": "a phase's CLI is done and its work committed, the phase not yet recorded",
    "phase.completed": "a phase has just been recorded completed",
    "checkpoint.written": "a checkpoint file has just been written",
    "merge.asked": "a landing has just been asked for: it waits for its merge train",
    "merge.locked": "the merge lock has just been taken",
    "merge.committed": "a merge commit has been written, the base ref not yet moved",
    "merge.ref_updated": "the base ref has just been moved to the merge commit",
    "merge.recorded": "a landed merge has just been recorded (task done, claim released)",
    "pull.intent": "a task's pull request intent is recorded, its branch not yet pushed",
    "pull.opened": "a task's pull request was just opened, its number not yet recorded",
    "pull.merged": "council's merge of a pull request was just answered, not yet recorded",
    "pull.retarget": "a stacked pull request was just retargeted to the base, not yet recorded",
    "start.session_recorded": "a starting run's session is recorded, none of its tasks yet",
    "batch.record_opened": "a batch's new task record was just made in place, nothing in it yet",
    "start.batch_recorded": "a batch of a starting run's tasks was just recorded, more to come",
    "sample.half_made": "the demo's sample repository has its files but no commit yet",
}
"""Every crash point, with where exactly it sits."""


def _parse(value: str | None) -> tuple[tuple[str, int] | None, str | None]:
    """(armed point and count, or None; the problem with ``value``, or None)."""
    if not value:
        return None, None
    name, _, count = value.partition(":")
    if name not in POINTS:
        return None, f"unknown crash point {name!r} in {value!r}; known: {', '.join(POINTS)}"
    if not count:
        return (name, 1), None
    if not count.isdigit() or int(count) < 1:
        return None, f"{value!r}: the count after ':' must be a whole number >= 1"
    return (name, int(count)), None


@dataclass(frozen=True)
class _Arming:
    """What this process's environment arms: read at the first crash point or check, not at
    import (a process forked from one that imported this module reads its own)."""

    armed: tuple[str, int] | None
    problem: str | None
    problem_at: str
    signal_name: str
    signal: signal.Signals
    trace: str | None


@functools.cache
def _arming() -> _Arming:
    armed, problem = _parse(os.environ.get(ENV))
    problem_at = ENV
    signal_name = os.environ.get(SIGNAL_ENV) or "SIGKILL"
    if signal_name not in _SIGNALS:
        armed, problem_at = None, SIGNAL_ENV
        problem = f"{signal_name!r}: the signal must be one of {', '.join(_SIGNALS)}"
    return _Arming(
        armed,
        problem,
        problem_at,
        signal_name,
        _SIGNALS.get(signal_name, signal.SIGKILL),
        os.environ.get(TRACE_ENV) or None,
    )


_reached = 0
_count_lock = threading.Lock()


def check_armed() -> None:
    """Refuse a ``COUNCIL_CRASH_AT`` that arms nothing (``ConfigError`` naming the points)."""
    arming = _arming()
    if arming.problem is not None:
        raise ConfigError([ConfigIssue("environment", None, arming.problem_at, arming.problem)])


def crash_point(name: str, what: str = "") -> None:
    """Die here with SIGKILL if this is the armed point's nth arrival (module doc); ``what``
    names the step for the trace."""
    arming = _arming()
    if arming.armed is None and arming.trace is None:
        return
    if arming.trace is not None:
        _trace(arming.trace, name, what)
    if arming.armed is not None:
        _arrive(name, *arming.armed)


def _trace(path: str, name: str, what: str) -> None:
    line = f"{name}\t{what}".replace("\n", " ") + "\n"
    # One O_APPEND write per line: lines from threads (and a resumed process) never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _arrive(name: str, armed: str, nth: int) -> None:
    global _reached
    if name != armed:
        return
    with _count_lock:
        _reached += 1
        if _reached != nth:
            return
        arming = _arming()
        line = f"council: crash point {name} reached ({nth}), {arming.signal_name}\n"
        os.write(2, line.encode())  # fd 2 itself: sys.stderr may be replaced
        os.kill(os.getpid(), arming.signal)
