"""A command (not a CLI) run inside the sandbox: a task's verify commands, a worktree's setup
commands. Both run code that CLIs wrote (the tests of a build, the package scripts of a
landed change), so what such code could reach is what a CLI could, not what the user can.

``confined_argv`` puts ``argv`` inside ``sandbox`` (``plan.command_confinement``: the working
directory and ``~/.cache`` writable, the rest of the user's HOME readable but for its keys and
logins, git's setup and every other worktree out of reach).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from orchestrator.sandbox import bubblewrap
from orchestrator.sandbox.plan import Sandbox, command_confinement

__all__ = ["confined_argv"]


def confined_argv(
    sandbox: Sandbox, cwd: Path, argv: Sequence[str], env: Mapping[str, str]
) -> list[str]:
    """``argv`` inside ``sandbox`` (blocking: the plan looks at the disk); as it is where the
    sandbox confines nothing, or when its program is not found (the run then says "command not
    found", as without a sandbox)."""
    settings, reach = sandbox.settings, sandbox.reach
    if settings.binary is None or reach is None:
        return list(argv)
    plan = command_confinement(settings, reach, workdir=cwd, argv=argv, env=env)
    if not os.path.isabs(plan.executable):
        return list(argv)
    return bubblewrap.command(settings.binary, plan, argv)
