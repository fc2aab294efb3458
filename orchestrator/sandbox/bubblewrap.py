"""A ``Confinement`` as a bubblewrap (``bwrap``) command line, on Linux.

``command(binary, plan, argv)`` is the argument list that runs ``argv`` confined::

    bwrap --ro-bind / / --dev /dev --unshare-pid --proc /proc --unshare-ipc
          [--unshare-net]
          --tmpfs <hidden> ... --ro-bind <p> <p> ... --bind <p> <p> ...   (shallowest first)
          --ro-bind <sealed> <sealed> ...
          --remount-ro <hidden> ...                                      (but /tmp)
          --chdir <worktree> -- <executable> <args...>

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

import shutil
import signal
from collections.abc import Sequence

from orchestrator.sandbox.network import Uplink
from orchestrator.sandbox.plan import Confinement

__all__ = ["PROBE", "command", "exit_status", "find"]

_FLAGS = {"hide": "--tmpfs", "read": "--ro-bind", "write": "--bind", "seal": "--ro-bind"}
PROBE = ("--ro-bind", "/", "/", "--dev", "/dev", "--unshare-pid", "--proc", "/proc", "true")


def find(path: str | None = None) -> str | None:
    """The ``bwrap`` program on ``path`` (this process's PATH when None)."""
    return shutil.which("bwrap", path=path)


def command(
    binary: str, plan: Confinement, argv: Sequence[str], uplink: Uplink | None = None
) -> list[str]:
    out = [binary, "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-pid", "--proc", "/proc"]
    out.append("--unshare-ipc")
    if not plan.network:
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
    for name, value in plan.env:
        out += ["--setenv", name, value]
    out += ["--chdir", str(plan.workdir), "--", plan.executable or argv[0], *argv[1:]]
    # The network: an open one in a namespace of its own (``sandbox.network``: made by
    # ``unshare`` in front of bwrap, joined by the helper), so bwrap does not unshare it.
    if uplink is not None and plan.network:
        return uplink.wrap(out)
    return out


def exit_status(code: int | None) -> tuple[int | None, int | None]:
    """bubblewrap's exit status as ``(exit_code, signal)`` of the command it ran."""
    if code is not None and code > 128:
        number = code - 128
        if number in _SIGNALS:
            return None, number
    return code, None


_SIGNALS = frozenset(int(s) for s in signal.Signals)
