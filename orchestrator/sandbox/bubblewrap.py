"""A ``Confinement`` as a bubblewrap (``bwrap``) command line, on Linux.

``command(binary, plan, argv)`` is the argument list that runs ``argv`` confined::

    [/bin/sh -c <join the launch's cgroup, exec> ...]                     (where one is made)
    bwrap --unshare-user --cap-drop ALL --disable-userns
          --ro-bind / / --dev /dev --unshare-pid --proc /proc --unshare-ipc
          [--unshare-net]
          --tmpfs <hidden> ... --ro-bind <p> <p> ... --bind <p> <p> ...   (shallowest first)
          --ro-bind <sealed> <sealed> ...
          --remount-ro <hidden> ...                                      (but /tmp)
          --chdir <worktree> -- [prlimit --nproc --data --fsize --] <executable> <args...>

- a user namespace of its own with every capability dropped, for root too: inside, the CLI
  has the same uid as outside (root stays uid 0, so what it writes is owned as before) but no
  ``CAP_SYS_ADMIN``, so it cannot unmount what hides a directory (``umount /proc``, ``umount
  $HOME``), remount ``/`` writable or mount anything, and ``--disable-userns`` forbids it a
  nested user namespace in which it would get capabilities back. Without this a root CLI kept
  every capability and undid the sandbox in one ``umount``. A CLI that sandboxes its own
  tools with bubblewrap (codex, ``plan.nested``) may make a nested one, which cannot undo the
  outer mounts either, and as root runs as uid ``NESTED_ROOT_UID`` inside (``_nesting``);
- resource limits (``plan.limits``, ``orchestrator.process.limits``): processes, memory and
  file size, as rlimits set by ``prlimit`` inside, and as root a cgroup joined outside;
- a new PID namespace with its own ``/proc``: the CLI sees no other process, so it cannot
  read the orchestrator's environment through ``/proc/<pid>/environ``, nor signal anyone; when
  it ends, everything it started inside ends with it;
- no ``--new-session``: the CLI stays in the process group the orchestrator made for it, so
  stopping the group stops it (the CLI has no terminal, the reason that flag exists);
- the hidden directories are empty and read-only (a write into ``~/.ssh`` fails, it does not
  land in a scratch copy), except ``/tmp``, which many programs write to whatever ``TMPDIR``
  says: there the CLI gets a private, empty, writable one;
- ``--unshare-net`` for ``network: none`` and ``model`` (``plan.network`` false: the
  namespace's own loopback alone, where ``model``'s proxy is relayed in); an open network with
  an ``Uplink`` (the CLI's own namespace, ``orchestrator.sandbox.network``) is ``uplink.wrap``
  of the whole line;
- the environment is the one the orchestrator built for the CLI (bwrap passes its own on).

bubblewrap reports a signal that killed the command as exit status ``128 + signal``
(``exit_status``: turned back into the signal, so a crash reads as a crash).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

from orchestrator.process import limits
from orchestrator.process.env import program
from orchestrator.sandbox.network import Uplink
from orchestrator.sandbox.plan import Confinement

__all__ = [
    "NAMESPACES",
    "NESTED_ROOT_UID",
    "PROBE",
    "Join",
    "command",
    "exit_status",
    "find",
]

Join = Callable[[Sequence[str]], list[str]]  # a command line put in a network namespace

_RESOLV = "/etc/resolv.conf"
_FLAGS = {"hide": "--tmpfs", "read": "--ro-bind", "write": "--bind", "seal": "--ro-bind"}
# Every sandbox's start: its own user namespace, no capability in it, no nested one.
NAMESPACES = ("--unshare-user", "--cap-drop", "ALL", "--disable-userns")
_BASE = ("--ro-bind", "/", "/", "--dev", "/dev", "--unshare-pid", "--proc", "/proc")
PROBE = (*NAMESPACES, *_BASE, "true")
NESTED_ROOT_UID = 65533  # root's uid inside the sandbox of a CLI that sandboxes itself


def find(path: str | None = None) -> str | None:
    """The ``bwrap`` program on ``path`` (this process's PATH when None), looked for once per
    process and PATH (``process.env.program``)."""
    return program("bwrap", path)


def command(
    binary: str,
    plan: Confinement,
    argv: Sequence[str],
    uplink: Uplink | None = None,
    join: Join | None = None,
    resolv: Path | None = None,
) -> list[str]:
    """The command line that runs ``argv`` as ``plan`` says (blocking where the plan's limits
    need a cgroup: it makes one); with ``uplink``, in a network namespace of its own; with
    ``join``, in the one it puts a command line in (a session's, ``orchestrator.services``:
    whatever the network setting, no namespace of its own, no uplink; ``resolv``, the file
    shown at ``/etc/resolv.conf``: its namespace's DNS forwarder)."""
    out = [binary, *(_nesting() if plan.nested else NAMESPACES), *_BASE, "--unshare-ipc"]
    if not plan.network and join is None:
        out.append("--unshare-net")
    for kind, path in plan.ordered:
        where = str(path)
        if kind == "secret":  # a directory gets an empty one, a file an empty file
            if path.is_dir():
                out += ["--tmpfs", where, "--remount-ro", where]
            else:
                out += ["--ro-bind", "/dev/null", where]
            continue
        out += [_FLAGS[kind], where] if kind == "hide" else [_FLAGS[kind], where, where]
    for path in plan.frozen:  # after every mount inside them: their mount points exist
        out += ["--remount-ro", str(path)]
    if join is not None and resolv is not None and os.path.exists(_RESOLV):
        out += ["--ro-bind", str(resolv), _RESOLV]
    for name, value in plan.env:
        out += ["--setenv", name, value]
    started = limits.inside(plan.limits, [plan.executable or argv[0], *argv[1:]])
    out += ["--chdir", str(plan.workdir), "--", *started]
    # The network: an open one in a namespace of its own (``sandbox.network``: made by
    # ``unshare`` in front of bwrap, joined by the helper), so bwrap does not unshare it.
    if join is not None:
        out = join(out)
    elif uplink is not None and plan.network:
        out = uplink.wrap(out)
    return limits.outside(plan.limits, out)


def _nesting() -> list[str]:
    """The user namespace of a CLI that makes a sandbox of its own: nested namespaces allowed
    (one made inside locks every mount it inherits: it cannot unmount or remount what hides a
    directory, and a ``/proc`` it mounts shows its own processes only), and as root a uid
    other than 0 inside, mapped to root outside (so what it writes is root's as before): a
    bwrap run as uid 0 takes itself for privileged and fails without the capabilities."""
    flags = ["--unshare-user", "--cap-drop", "ALL"]
    if os.geteuid() == 0:
        flags += ["--uid", str(NESTED_ROOT_UID), "--gid", str(NESTED_ROOT_UID)]
    return flags


def exit_status(code: int | None) -> tuple[int | None, int | None]:
    """bubblewrap's exit status as ``(exit_code, signal)`` of the command it ran."""
    if code is not None and code > 128:
        number = code - 128
        if number in _SIGNALS:
            return None, number
    return code, None


_SIGNALS = frozenset(int(s) for s in signal.Signals)
