"""Resource limits on a confined CLI or command: how many processes, how much memory, how large
a file. A fork bomb, a memory hog or a disk fill by one CLI fails that CLI, not the run.

Two mechanisms, both set before the CLI's first instruction and out of its reach (it runs with
every capability dropped, so it can lower a limit but never raise one, nor leave its cgroup):

- **rlimits** (``inside``): the sandbox's first program is util-linux's ``prlimit``, which sets
  ``RLIMIT_NPROC`` (processes and threads), ``RLIMIT_DATA`` (each process's heap and private
  writable memory: not ``RLIMIT_AS``, which breaks V8's large address-space reservations) and
  ``RLIMIT_FSIZE`` (a write past it fails with ``EFBIG``, or ``SIGXFSZ`` kills the writer), then
  runs the CLI. It runs inside the sandbox's user namespace, so the kernel counts only the
  sandbox's own processes against ``RLIMIT_NPROC``, not the user's others.
- **a cgroup** (``outside``): the kernel never enforces ``RLIMIT_NPROC`` for root (kuid 0, in
  a user namespace too), so where this process can make cgroups (root on cgroup v1's ``pids``
  and ``memory`` hierarchies, or on a cgroup v2 tree whose controllers it may enable) each
  launch gets one of its own: ``pids.max`` bounds the processes, the memory limit the whole
  CLI's memory (all its processes together). A ``/bin/sh`` joins it and ``exec``s the sandbox,
  so everything the CLI starts is in it from the first fork. An emptied cgroup is the next
  launch's once its launch is over (``ended``; no cgroup made and removed per launch); they
  are removed when this process exits.

What holds: as a user, processes (``RLIMIT_NPROC``), memory per process and file size; as root,
memory per process and file size always, and processes plus the whole CLI's memory only where
a cgroup could be made (``Cgroups.available``: ``council doctor`` says when not). A disk fill
by many files each under the size limit is not bounded (that needs a quota or a sized
filesystem)."""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.process.env import program

__all__ = [
    "UNBOUNDED",
    "Cgroups",
    "Limits",
    "cgroups",
    "describe",
    "ended",
    "find_prlimit",
    "inside",
    "outside",
    "unbounded_as_root",
]

_GIB = 1024**3
_SH = "/bin/sh"
_ROOT = Path("/sys/fs/cgroup")
_UNIFIED = "unified"  # cgroup v2's single tree
_START_GRACE = 30.0  # seconds from making a launch's cgroup to its process joining it, at most


@dataclass(frozen=True)
class Limits:
    """The bounds on one CLI or command; None leaves that one unbounded (the run config's
    ``sandbox.limits`` has the defaults: ``orchestrator.config.sandbox``)."""

    processes: int | None = None  # processes and threads
    memory: int | None = None  # bytes: each process's data (and, in a cgroup, all of them)
    file_size: int | None = None  # bytes: the largest file it may write

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.processes, self.memory, self.file_size))


def inside(limits: Limits, argv: list[str], prlimit: str | None = None) -> list[str]:
    """``argv`` run by ``prlimit`` with ``limits``'s rlimits (hard and soft alike); ``argv``
    itself when nothing is bounded. ``prlimit``: its path (found on this process's PATH)."""
    flags = [
        f"--{name}={value}:{value}"
        for name, value in (
            ("nproc", limits.processes),
            ("data", limits.memory),
            ("fsize", limits.file_size),
        )
        if value is not None
    ]
    if not flags:
        return list(argv)
    binary = prlimit or find_prlimit()
    if binary is None:
        raise FileNotFoundError("prlimit (util-linux) is not installed: no resource limits")
    return [binary, *flags, "--", *argv]


def outside(limits: Limits, argv: list[str]) -> list[str]:
    """``argv`` started inside a new cgroup bounding ``limits``'s processes and memory, where
    this process can make one (blocking: it writes the cgroup's files); ``argv`` itself
    otherwise."""
    if limits.processes is None and limits.memory is None:
        return list(argv)
    joins = cgroups().make(limits)
    if not joins:
        return list(argv)
    script = " && ".join([*(f'echo $$ >"${n + 1}"' for n in range(len(joins)))])
    script += f' && shift {len(joins)} && exec "$@"'
    return [_SH, "-c", script, "sh", *map(str, joins), *argv]


def ended(argv: Sequence[str]) -> None:
    """Says that a command ``outside`` made (``argv``, as it returned it) has ended, or never
    started: its cgroup is the next launch's once empty (not blocking: no file is touched)."""
    if len(argv) > 4 and argv[0] == _SH and argv[3] == "sh" and "cgroup.procs" in argv[4]:
        cgroups().release(arg for arg in argv[4:] if arg.endswith("/cgroup.procs"))


def describe(limits: Limits) -> str:
    """``limits`` and what enforces them here, for a human (``council doctor``)."""
    parts = []
    where = cgroups().available()
    if limits.processes is not None:
        how = "cgroup" if where else ("not bounded as root: no cgroup" if _root() else "rlimit")
        parts.append(f"{limits.processes} processes ({how})")
    if limits.memory is not None:
        whole = ", the CLI's all together in a cgroup" if where else ""
        parts.append(f"{_size(limits.memory)} memory per process{whole}")
    if limits.file_size is not None:
        parts.append(f"{_size(limits.file_size)} per file")
    return "; ".join(parts) if parts else "no resource limits (configured)"


def unbounded_as_root(limits: Limits) -> bool:
    """Whether a process limit is asked for but cannot hold here: root with no cgroup."""
    return limits.processes is not None and _root() and not cgroups().available()


class Cgroups:
    """The cgroups this process makes for its launches: ``<own cgroup>/council-<pid>/<n>`` in
    each hierarchy that bounds processes or memory (found and tried once), each reused once
    emptied."""

    def __init__(self, root: Path = _ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> None:
        self._root, self._proc = root, proc_cgroup
        self._lock = threading.Lock()
        self._parents: dict[str, Path] | None = None  # controller -> this process's parent dir
        self._counter = itertools.count(1)
        self._leaves: list[str] = []  # the launches' cgroups made so far, reused once empty
        self._pending: dict[str, float] = {}  # handed out, not yet seen holding a process: when
        self.problem = ""

    def available(self) -> bool:
        return bool(self._found())

    def make(self, limits: Limits) -> list[Path]:
        """The ``cgroup.procs`` files (one per hierarchy) of a cgroup for one launch, with
        ``limits`` set: an emptied one of an earlier launch, else a new one; empty where none
        can be made."""
        parents = self._found()
        if not parents:
            return []
        with self._lock:
            name = self._free(parents)
            fresh = name is None
            if name is None:
                name = str(next(self._counter))
                self._leaves.append(name)
            self._pending[name] = time.monotonic()
        try:
            for controller, parent in parents.items():
                if fresh:
                    (parent / name).mkdir(exist_ok=True)
                self._set(controller, parent / name, limits)
        except OSError as exc:
            with self._lock:
                self._pending.pop(name, None)
                if fresh:
                    self._leaves.remove(name)
            for parent in parents.values():
                with contextlib.suppress(OSError):
                    (parent / name).rmdir()
            self.problem = f"cannot make a cgroup: {exc}"
            return []
        return [parent / name / "cgroup.procs" for parent in parents.values()]

    def release(self, joined: Iterable[str]) -> None:
        """The launches whose ``cgroup.procs`` files ``joined`` names are over."""
        with self._lock:
            for path in joined:
                self._pending.pop(os.path.basename(os.path.dirname(path)), None)

    def _free(self, parents: dict[str, Path]) -> str | None:
        """An emptied cgroup of an earlier launch (under the lock): one whose launch is over
        (``release``) or that was seen holding a process (once empty it stays so: nothing
        inside may leave or come back) or handed out long ago (its start failed, unsaid). One
        handed out just now, whose process is on its way, is not."""
        first = next(iter(parents.values()))
        now = time.monotonic()
        for name in self._leaves:
            busy = _holds_any(first / name)
            made = self._pending.get(name)
            if made is not None:
                if not busy and now - made < _START_GRACE:
                    continue
                del self._pending[name]
            if not busy:
                return name
        return None

    @staticmethod
    def _set(controller: str, leaf: Path, limits: Limits) -> None:
        unified = controller == _UNIFIED
        if controller in ("pids", _UNIFIED):
            (leaf / "pids.max").write_text(str(limits.processes or "max"))
        if controller in ("memory", _UNIFIED):
            name, unbounded = ("memory.max", "max") if unified else ("memory.limit_in_bytes", "-1")
            (leaf / name).write_text(str(limits.memory or unbounded))
            if unified:  # no swap to spill into past the limit
                with contextlib.suppress(OSError):
                    (leaf / "memory.swap.max").write_text("0" if limits.memory else "max")

    def _found(self) -> dict[str, Path]:
        with self._lock:
            if self._parents is None:
                self._parents = self._find()
                if self._parents:
                    atexit.register(self.remove_all)
            return self._parents

    def _find(self) -> dict[str, Path]:
        try:
            lines = self._proc.read_text().splitlines()
        except OSError as exc:
            self.problem = f"no cgroups here: {exc}"
            return {}
        own = {}
        for line in lines:
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(","):
                own[controller or _UNIFIED] = path
        parents: dict[str, Path] = {}
        for controller in ("pids", "memory"):  # cgroup v1: a hierarchy per controller
            base = self._root / controller
            if controller in own and (base / "cgroup.procs").exists():
                parent = self._make_parent(base / own[controller].lstrip("/"))
                if parent is not None:
                    parents[controller] = parent
        if (
            "pids" not in parents
            and _UNIFIED in own
            and (self._root / "cgroup.controllers").exists()
        ):
            # cgroup v2: one tree, the controllers enabled for the launches' cgroups
            parent = self._make_parent(self._root / own[_UNIFIED].lstrip("/"), unified=True)
            parents = {_UNIFIED: parent} if parent is not None else {}
        if "pids" not in parents and _UNIFIED not in parents:
            if not self.problem:
                self.problem = "no cgroup hierarchy bounds processes here"
            for parent in parents.values():
                with contextlib.suppress(OSError):
                    parent.rmdir()
            return {}
        self.problem = ""
        return parents

    def _make_parent(self, base: Path, *, unified: bool = False) -> Path | None:
        parent = base / f"council-{os.getpid()}"
        try:
            self._sweep_dead(base)
            parent.mkdir(exist_ok=True)
            if unified:
                (parent / "cgroup.subtree_control").write_text("+pids +memory")
        except OSError as exc:
            with contextlib.suppress(OSError):
                parent.rmdir()
            self.problem = f"cannot make a cgroup under {base}: {exc.strerror or exc}"
            return None
        return parent

    @staticmethod
    def _sweep_dead(base: Path) -> None:
        """Remove what an orchestrator that is gone left (emptied cgroups only)."""
        with contextlib.suppress(OSError):
            for old in base.glob("council-*"):
                pid = old.name.removeprefix("council-")
                if not pid.isdigit() or int(pid) == os.getpid() or Path(f"/proc/{pid}").exists():
                    continue
                for leaf in old.iterdir():
                    if leaf.is_dir():
                        with contextlib.suppress(OSError):
                            leaf.rmdir()
                with contextlib.suppress(OSError):
                    old.rmdir()

    def remove_all(self) -> None:
        """Every emptied cgroup of this process, and its parents once empty (at exit)."""
        parents = self._parents or {}
        for parent in parents.values():
            for name in self._leaves:
                with contextlib.suppress(OSError):
                    (parent / name).rmdir()
            with contextlib.suppress(OSError):
                parent.rmdir()


UNBOUNDED = Limits()

_CGROUPS: Cgroups | None = None
_CGROUPS_LOCK = threading.Lock()


def cgroups() -> Cgroups:
    """This process's cgroups for its launches (made on first use)."""
    global _CGROUPS
    with _CGROUPS_LOCK:
        if _CGROUPS is None:
            _CGROUPS = Cgroups()
        return _CGROUPS


def _holds_any(leaf: Path) -> bool:
    try:
        return bool((leaf / "cgroup.procs").read_bytes().strip())
    except OSError:
        return False


def find_prlimit() -> str | None:
    """util-linux's ``prlimit``, which sets the rlimits inside the sandbox; None if missing
    (on PATH, looked for once per process and PATH: ``process.env.program``)."""
    return program("prlimit") or next(
        (p for p in ("/usr/bin/prlimit", "/bin/prlimit") if os.access(p, os.X_OK)), None
    )


def _root() -> bool:
    return os.geteuid() == 0


def _size(value: int) -> str:
    for unit, size in (("GiB", _GIB), ("MiB", 1024**2), ("KiB", 1024)):
        if value >= size and value % size == 0:
            return f"{value // size} {unit}"
    return f"{value} bytes"
