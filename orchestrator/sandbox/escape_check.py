"""Does the sandbox hold here? A real escape attempt from inside it, as ``council doctor`` runs.

``attempt(settings)`` builds the plan a CLI gets (``plan.confinement``) for a scratch
repository, session and user HOME (never the user's own), starts the same ``bwrap`` command
line a CLI would get (``bubblewrap.command``: user namespace, dropped capabilities, limits),
as the user this process runs as, and runs a shell script inside that tries what got a root CLI
out when bwrap kept its capabilities:

- ``umount -l /proc``, then reads this process's environment through ``/proc/<pid>/environ``
  (compared by hash: a match means the CLI could read the orchestrator's keys);
- ``mount -o remount,rw`` of ``/`` and of the repository, then writes into the repository;
- ``umount -l`` of the hidden HOME and of the hidden ``.council/``, then reads a file there;
- a nested user namespace (``unshare -Ur``), where it would get capabilities back;
- any effective capability at all.

Each is said as held or escaped (``Outcome``); the script must reach its end, or the attempt
itself failed (``Outcome.problem``); a tool that is not installed (``umount``, ``unshare``) is
said as such (``Outcome.missing``): what it would have tried proves nothing then, while the
capabilities, read from the kernel, still do. The limits the sandbox set are read back from
``/proc/self/limits``."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread

from orchestrator.process.command import run_command
from orchestrator.process.env import command_env
from orchestrator.sandbox import bubblewrap
from orchestrator.sandbox.plan import GitReach, SandboxSettings, confinement

__all__ = ["Outcome", "attempt"]

_TIMEOUT = 30.0
_SCRATCH = "/var/tmp"  # noqa: S108 - a private directory is made in it
_PLANTED = "what no CLI may read\n"  # in the hidden HOME and .council/
# $1 this process's pid, $2 its environment's sha256, $3 the read-only repository,
# $4 the hidden user HOME, $5 the hidden .council directory.
_SCRIPT = r"""
for tool in umount mount unshare sha256sum; do
  command -v "$tool" >/dev/null || echo "missing: $tool"
done
say() { if [ "$1" = 0 ]; then echo "escaped: $2"; else echo "held: $2"; fi; }
umount -l /proc 2>/dev/null
seen=$(sha256sum "/proc/$1/environ" 2>/dev/null | cut -d' ' -f1)
[ "$seen" = "$2" ]; say $? "umount /proc, then read the orchestrator's environment"
mount -o remount,rw / 2>/dev/null; mount -o remount,rw "$3" 2>/dev/null
(echo x > "$3/planted") 2>/dev/null
say $? "remount / writable, then write the repository"
umount -l "$4" 2>/dev/null; cat "$4/.ssh/id_ed25519" >/dev/null 2>&1
say $? "umount the hidden HOME, then read ~/.ssh"
umount -l "$5" 2>/dev/null; cat "$5/state/secret" >/dev/null 2>&1
say $? "umount the hidden .council, then read the run's state"
unshare -Ur true 2>/dev/null; say $? "a nested user namespace (capabilities again)"
caps=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)
[ -n "$caps" ] && [ "$caps" != 0000000000000000 ]; say $? "capabilities ($caps)"
sed -n 's/^Max \(processes\|data size\|file size\) *\([^ ]*\).*/limit \1 \2/p' /proc/self/limits
echo checked
"""


@dataclass(frozen=True)
class Outcome:
    """What the attempt found: the escapes that worked, the ones refused, the limits seen
    inside (``processes``, ``data size``, ``file size``: a number or ``unlimited``), and the
    problem when the attempt could not be made at all (bwrap failed to start, say)."""

    escaped: tuple[str, ...]
    held: tuple[str, ...]
    limits: dict[str, str]
    problem: str = ""
    missing: tuple[str, ...] = ()  # tools not installed: their attempts proved nothing

    @property
    def holds(self) -> bool:
        return not self.problem and not self.escaped and bool(self.held)


async def attempt(settings: SandboxSettings) -> Outcome:
    """Try to get out of the sandbox ``settings`` describe (bubblewrap only)."""
    if settings.binary is None:
        return Outcome((), (), {}, f"no sandbox to try ({settings.reason})")
    # Not under /tmp, which the sandbox hides whole: what hides the HOME must be all there is.
    where = _SCRATCH if os.access(_SCRATCH, os.W_OK) else None
    scratch = Path(await anyio.to_thread.run_sync(tempfile.mkdtemp, None, "council-doctor-", where))
    try:
        argv, cwd = await anyio.to_thread.run_sync(_prepare, settings, scratch)
        env = {**command_env()[0], "PATH": os.environ.get("PATH", os.defpath)}
        result = await run_command(argv, cwd=cwd, env=env, timeout=_TIMEOUT)
    finally:
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(scratch, ignore_errors=True))
    return _read(result.output, result.returncode, result.timed_out)


def _prepare(settings: SandboxSettings, scratch: Path) -> tuple[list[str], Path]:
    """The escape script's confined command line, and its working directory (blocking). The
    scratch stands for the user's: its repository, HOME and ``.council/``."""
    repo, user_home = scratch / "repo", scratch / "home"
    council = repo / ".council"
    work, home = council / "worktrees" / "s1", council / "homes" / "s1"
    for directory in (work, home, council / "state", user_home / ".ssh"):
        directory.mkdir(parents=True)
    (council / "state" / "secret").write_text(_PLANTED)
    (user_home / ".ssh" / "id_ed25519").write_text(_PLANTED)
    own = hashlib.sha256(Path(f"/proc/{os.getpid()}/environ").read_bytes()).hexdigest()
    args = [str(os.getpid()), own, str(repo), str(user_home), str(council)]
    argv = ["sh", "-c", _SCRIPT, "sh", *args]
    env = {"PATH": os.environ.get("PATH", os.defpath)}
    reach = GitReach(repo, council, (), ())
    plan = confinement(
        settings, reach, workdir=work, home=home, argv=argv, env=env, user_home=str(user_home)
    )
    assert settings.binary is not None
    return bubblewrap.command(settings.binary, plan, argv), work


def _read(output: str, code: int | None, timed_out: bool) -> Outcome:
    escaped, held, missing, limits = [], [], [], {}
    for line in output.splitlines():
        kind, _, what = line.partition(": ")
        if kind == "escaped":
            escaped.append(what)
        elif kind == "held":
            held.append(what)
        elif kind == "missing":
            missing.append(what)
        elif line.startswith("limit "):
            name, _, value = line.removeprefix("limit ").rpartition(" ")
            limits[name] = value
    problem = ""
    if timed_out:
        problem = f"the attempt did not end within {_TIMEOUT:g}s"
    elif "checked" not in output.splitlines() or code != 0:
        problem = f"the attempt could not run (exit {code}): {output.strip()[-300:]}"
    return Outcome(tuple(escaped), tuple(held), limits, problem, tuple(missing))
