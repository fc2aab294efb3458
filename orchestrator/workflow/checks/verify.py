"""Verify commands: the task's own proof that the build works.

Each command is an argument list (never a shell) run in the session's worktree, in its own
process group, with a time limit. They run in order and stop at the first failure (later
commands usually depend on earlier ones, and a failure is already decisive). A command that
cannot be started, exits non-zero or runs out of time fails; ``failure_message`` names it and
quotes the tail of its output, which is where errors are.

A verify command runs tests a CLI wrote, so it runs confined exactly as that CLI is, through
the one path for such code (``sandbox.commands.run_confined``): the CLI's sandbox where there
is one, with the session's private HOME for commands (HOME, the XDG directories and TMPDIR
there; the user's HOME hidden but for the toolchains on PATH, never their logins), the task's
network setting, and the allow-listed environment of every non-CLI child plus the
``passthrough`` names, never the orchestrator's whole environment. Without a sandbox only its
environment is private. What it prints comes back masked (the run's known secrets and every
credential shape, ``safety.secret_shapes``) before a ``VerifyRecord`` holds it: the handoff,
the task's error, the console and whatever is posted on an issue or a pull request carry only
the mask.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from orchestrator.errors import RunError
from orchestrator.sandbox.commands import CommandPlace, run_confined
from orchestrator.workflow.handoffs.document import VerifyRecord

__all__ = ["DEFAULT_VERIFY_TIMEOUT", "failure_message", "run_verify"]


DEFAULT_VERIFY_TIMEOUT = 600.0
_TAIL = 4000


async def run_verify(
    commands: Sequence[Sequence[str]],
    place: CommandPlace,
    *,
    timeout: float = DEFAULT_VERIFY_TIMEOUT,
    passthrough: Sequence[str] = (),
) -> list[VerifyRecord]:
    """Run ``commands`` in ``place`` (the session's worktree, its private HOME for commands,
    its CLI's sandbox) until one fails; the records of those that ran, their output masked."""
    records: list[VerifyRecord] = []
    for argv in commands:
        try:
            result = await run_confined(place, argv, timeout=timeout, passthrough=passthrough)
        except RunError as exc:
            records.append(
                VerifyRecord(argv=list(argv), ok=False, returncode=None, output_tail=str(exc))
            )
            break
        records.append(
            VerifyRecord(
                argv=list(argv),
                ok=result.ok,
                returncode=result.returncode,
                timed_out=result.timed_out,
                seconds=round(result.seconds, 3),
                output_tail=result.output[-_TAIL:],
            )
        )
        if not result.ok:
            break
    return records


def failure_message(record: VerifyRecord, tail: int = 1500) -> str:
    command = shlex.join(record.argv)
    if record.timed_out:
        how = "ran out of time"
    elif record.returncode is None:
        how = "could not be started"
    else:
        how = f"exited {record.returncode}"
    output = record.output_tail[-tail:].rstrip()
    return f"verify command `{command}` {how}" + (f":\n{output}" if output else "")
