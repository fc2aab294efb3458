"""Verify commands: the task's own proof that the build works.

Each command is an argument list (never a shell) run in the session's worktree through
``process.run_command``, in its own process group, with a time limit, and with the
allow-listed environment of every non-CLI child plus the ``passthrough`` names
(``process_env.command_env``), never the orchestrator's whole environment: a verify command
runs tests a CLI wrote, which can print or write whatever they can read. They run in order and
stop at the first failure (later commands usually depend on earlier ones, and a failure is
already decisive). A command that cannot be started, exits non-zero or runs out of time
fails; ``failure_message`` names it and quotes the tail of its output, which is where errors
are.

Where the run has a sandbox, each runs inside it (``sandbox.plan.command_confinement``): the
worktree and ``~/.cache`` writable, the rest of the user's HOME readable but for its keys and
logins (hidden), git's setup and every other worktree out of reach. What a test a CLI wrote
could reach is what the CLI could, not what the user can.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

import anyio.to_thread

from orchestrator.errors import RunError
from orchestrator.process.command import run_command
from orchestrator.process.env import command_env
from orchestrator.safety.secret_mask import remember, remember_named
from orchestrator.sandbox.commands import confined_argv
from orchestrator.sandbox.plan import Sandbox
from orchestrator.workflow.handoffs.document import VerifyRecord

__all__ = ["DEFAULT_VERIFY_TIMEOUT", "failure_message", "run_verify"]


DEFAULT_VERIFY_TIMEOUT = 600.0
_TAIL = 4000


async def run_verify(
    commands: Sequence[Sequence[str]],
    cwd: Path,
    *,
    timeout: float = DEFAULT_VERIFY_TIMEOUT,
    passthrough: Sequence[str] = (),
    sandbox: Sandbox | None = None,
) -> list[VerifyRecord]:
    """Run ``commands`` in ``cwd`` until one fails; the records of those that ran. Each runs
    in ``sandbox`` when given (it runs tests a CLI wrote: ``sandbox.plan.command_confinement``)."""
    env, secrets = command_env(passthrough)
    remember(secrets)
    remember_named({name: env[name] for name in passthrough if env.get(name) in secrets})
    records: list[VerifyRecord] = []
    for argv in commands:
        started = list(argv)
        if sandbox is not None:
            started = await anyio.to_thread.run_sync(confined_argv, sandbox, cwd, argv, env)
        try:
            result = await run_command(started, cwd=cwd, env=env, timeout=timeout)
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
