"""Commands (not CLIs) run on a session's work: the one path for code a CLI wrote.

A task's verify commands and a worktree's setup commands run the repository's tests and
package scripts, which CLIs wrote. ``run_confined`` runs each of them confined exactly as the
session's CLI is, and every such command of the orchestrator goes through it:

- **the sandbox** the session's CLI gets, where there is one (``plan.command_confinement``):
  the worktree and the session's private HOME writable; the user's HOME, ``/tmp``,
  ``.council/`` and the runtime directories hidden; the checkout, the ``read:`` paths and the
  toolchains the command needs to start (the PATH's directories under the user's HOME, never
  the logins beside them) read-only; git's setup sealed; the task's network setting (an open
  one a namespace of its own, ``sandbox.network``: the public network, never the machine's
  loopback; ``none``: no network);
- **the session's private HOME** (``CommandPlace.home``, made here on first use): ``HOME``,
  ``XDG_CONFIG_HOME``, ``XDG_CACHE_HOME``, ``XDG_DATA_HOME``, ``XDG_STATE_HOME`` and
  ``TMPDIR`` point into it, with or without a sandbox, so a build's caches and settings are
  its own, never the user's ``~/.cache`` or dotfiles. Without a sandbox that is all: the
  command can still name the user's files by their absolute paths (``council doctor`` and
  the run's start say so);
- **the allow-listed environment** of every non-CLI child (``process.env.command_env``), the
  ``passthrough`` names (remembered as secrets, each by its name, when sensitive) and the
  caller's ``extra`` variables, never the orchestrator's whole environment;
- **its output masked before anyone sees it**: every secret the run knows
  (``safety.secret_mask``) and every credential by its shape (``safety.secret_shapes``), in
  the result and in the error of a command that could not start. Whatever a caller stores,
  logs, shows or posts of it (a handoff's ``VerifyRecord``, the task's error, a setup log, an
  issue comment, a pull request's body) is already masked;
- **the session's own network and variables**, when the run gives the session services
  (``CommandPlace.session``, a ``SessionSide``: ``orchestrator.services``): the command runs
  in the session's network namespace (its services at ``127.0.0.1``, the same port in every
  session its own), sandboxed or not, and gets the services' ``COUNCIL_SERVICE_*``
  variables. Under the sandbox with an open network that namespace has its own way out to
  the public network (``slirp4netns``, never the machine's loopback), its DNS forwarder
  named by the ``resolv.conf`` the command sees; otherwise it has none.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio.to_thread

from orchestrator.errors import RunError
from orchestrator.process import limits
from orchestrator.process.command import CommandResult, run_command
from orchestrator.process.env import command_env, home_ready, prepare_home, private_dirs
from orchestrator.safety import secret_mask, secret_shapes
from orchestrator.sandbox import bubblewrap
from orchestrator.sandbox.network import Uplink
from orchestrator.sandbox.plan import Sandbox, command_confinement

__all__ = [
    "CommandPlace",
    "SessionSide",
    "confined_argv",
    "run_confined",
    "service_argv",
    "service_env",
    "shown",
]


@dataclass(frozen=True)
class SessionSide:
    """What of a session its services make its own (module doc): ``env``, their variables;
    ``join``, a command line put in the session's network namespace (None: it has none);
    ``resolv``, a ``resolv.conf`` naming that namespace's DNS forwarder when it has a way out
    (``services.session_net``), shown at ``/etc/resolv.conf`` to a sandboxed command in it."""

    env: Mapping[str, str] = field(default_factory=dict)
    join: bubblewrap.Join | None = None
    resolv: Path | None = None


@dataclass(frozen=True)
class CommandPlace:
    """Where a session's commands run: its worktree, its private HOME for commands (never the
    CLI's own, which links the user's logins), and the sandbox its CLI gets (None: none)."""

    workdir: Path
    home: Path
    sandbox: Sandbox | None = None
    session: SessionSide | None = None  # the session's services' network and variables

    @property
    def confined(self) -> bool:
        """Whether the commands run in a sandbox (else only their environment is private)."""
        return (
            self.sandbox is not None
            and self.sandbox.settings.binary is not None
            and self.sandbox.reach is not None
        )


def shown(text: str) -> str:
    """``text`` (a command's output) as it may be stored, shown or posted: known secrets and
    credential shapes masked."""
    return secret_shapes.masked(secret_mask.hidden(text))


async def run_confined(
    place: CommandPlace,
    argv: Sequence[str],
    *,
    timeout: float,
    passthrough: Sequence[str] = (),
    extra: Mapping[str, str] | None = None,
) -> CommandResult:
    """Run ``argv`` in ``place`` (see the module doc); its result with the output masked.
    ``RunError`` (its message masked) when it cannot be started."""
    side = place.session or SessionSide()
    extra = {**side.env, **(extra or {})}
    env = await anyio.to_thread.run_sync(_environment, place, passthrough, extra)
    started, uplink = list(argv), None
    if place.confined:
        started, uplink = await anyio.to_thread.run_sync(confined_argv, place, argv, env)
    elif side.join is not None:
        started = side.join(argv)
    try:
        result = await run_command(
            started,
            cwd=place.workdir,
            env=env,
            timeout=timeout,
            pass_fds=uplink.child_fds() if uplink is not None else (),
            attach=_attaching(uplink) if uplink is not None else None,
        )
    except RunError as exc:
        raise RunError(shown(str(exc))) from None
    finally:
        if uplink is not None:  # ends with the sandbox: waited for, never left behind
            await uplink.close()
        limits.ended(started)  # its cgroup, if one was made, the next launch's once empty
    return dataclasses.replace(result, argv=list(argv), output=shown(result.output))


def _attaching(uplink: Uplink) -> Callable[[int], Awaitable[None]]:
    """What ``run_command`` does once the sandbox started: its ends of the pipes closed here,
    then its network given (the command starts only with it)."""

    async def attach(pid: int) -> None:
        uplink.started()
        await uplink.attach(pid)

    return attach


def _environment(
    place: CommandPlace, passthrough: Sequence[str], extra: Mapping[str, str] | None
) -> dict[str, str]:
    """The command's environment (blocking: the private HOME is made on first use). The
    private directories come last: nothing passed through moves them."""
    if not home_ready(place.home):
        prepare_home(place.home, {})
    env, secrets = command_env(passthrough, {**(extra or {}), **private_dirs(place.home)})
    secret_mask.remember(secrets)
    secret_mask.remember_named(
        {name: env[name] for name in passthrough if env.get(name) in secrets}
    )
    return env


def confined_argv(
    place: CommandPlace, argv: Sequence[str], env: Mapping[str, str]
) -> tuple[list[str], Uplink | None]:
    """``argv`` inside ``place``'s sandbox (blocking: the plan looks at the disk), and the
    network of its own it gets once started (``sandbox.network``, as its CLI's open network
    does); as it is where that confines nothing, or when its program is not found (the run
    then says "command not found", as without a sandbox)."""
    sandbox = place.sandbox
    if sandbox is None:
        return list(argv), None
    settings, reach = sandbox.settings, sandbox.reach
    if settings.binary is None or reach is None:  # not ``confined``
        return list(argv), None
    plan = command_confinement(
        settings, reach, workdir=place.workdir, home=place.home, argv=argv, env=env
    )
    if not os.path.isabs(plan.executable):
        return list(argv), None
    side = place.session or SessionSide()
    if side.join is not None:  # the session's network (and its uplink): none of its own
        command = bubblewrap.command(
            settings.binary, plan, argv, join=side.join, resolv=side.resolv
        )
        return command, None
    uplink = Uplink(settings.uplink) if settings.uplink is not None and plan.network else None
    return bubblewrap.command(settings.binary, plan, argv, uplink), uplink


def service_env(place: CommandPlace, extra: Mapping[str, str]) -> dict[str, str]:
    """A session's service's environment, as its commands get it (blocking: the private
    HOME is made on first use)."""
    return _environment(place, (), extra)


def service_argv(place: CommandPlace, argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """``argv``, a session's service (``orchestrator.services``), as confined as the session's
    commands: a service runs code the CLI wrote (a dev server, the repository's scripts) for
    as long as the session lasts, so it gets its sandbox exactly, the user's HOME hidden, with
    no network of its own: the caller starts it in the session's network, shown its DNS
    forwarder when it has a way out (``SessionSide.resolv``; blocking: the plan looks at the
    disk). Where there is no sandbox, ``argv`` as it is."""
    sandbox = place.sandbox
    if sandbox is None or not place.confined:
        return list(argv)
    settings, reach = sandbox.settings, sandbox.reach
    assert settings.binary is not None and reach is not None  # ``confined``
    plan = command_confinement(
        settings, reach, workdir=place.workdir, home=place.home, argv=argv, env=env
    )
    if not os.path.isabs(plan.executable):
        return list(argv)  # not found: it fails to start and says so, as without a sandbox
    resolv = place.session.resolv if place.session is not None else None
    return bubblewrap.command(settings.binary, plan, argv, join=list, resolv=resolv)
