"""What the process benches share: a command measured as a process, and rounds summarised.

``Measured`` is one process run to its end: wall seconds from its start to its exit, and its CPU:
in all from ``wait4`` (in microseconds), and its own share (all its threads) read from
``/proc/<pid>/stat`` while it is a zombie (``waitid`` with ``WNOWAIT``, before it is reaped; in
clock ticks, 10 ms); all is itself and every process it waited for (its git processes, its
CLIs, and their own children: each parent waits for its children, and the ``council`` command is
a subreaper, so orphans are waited for too). Nothing is sampled: the kernel's own totals.

``Series`` holds one figure per round; ``spread`` prints a median with its range. Ratios are
taken round by round (the two sides of a round ran back to back, under the same load) and their
median and range printed, beside the ratio of the medians.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Measured:
    argv: list[str]
    code: int
    wall: float  # seconds from the start to the exit
    own_cpu: float  # the process itself, all its threads (user + system)
    child_cpu: float  # the processes it waited for, with theirs
    stdout: str
    stderr: str

    @property
    def cpu(self) -> float:
        """All processes: the process and every process under it."""
        return self.own_cpu + self.child_cpu


class Running:
    """A started process whose output goes to temporary files (no pipe to drain)."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.argv = argv
        self._out = tempfile.TemporaryFile()  # noqa: SIM115 (closed in finish)
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 (closed in finish)
        self.started = time.perf_counter()
        self.process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=self._out, stderr=self._err)

    def finish(self, timeout: float | None = None) -> Measured:
        """Wait for the exit; read the CPU of the zombie, then reap it. On ``timeout`` the
        process is killed and ``code`` is -9."""
        pid = self.process.pid
        deadline = None if timeout is None else self.started + timeout
        while True:
            result = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
            if result is not None:
                break
            if deadline is not None and time.perf_counter() > deadline:
                self.process.kill()
                deadline = None
            time.sleep(0.005)
        wall = time.perf_counter() - self.started
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        # fields[11:13]: utime, stime of the process itself (stat(5) fields 14 and 15), in
        # clock ticks; wait4's total (itself and every process it waited for) in microseconds.
        own = (int(fields[11]) + int(fields[12])) / _TICKS
        _, status, usage = os.wait4(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        self.process.returncode = code
        total = usage.ru_utime + usage.ru_stime
        children = max(0.0, total - own)
        self._out.seek(0)
        self._err.seek(0)
        out = self._out.read().decode(errors="replace")
        err = self._err.read().decode(errors="replace")
        self._out.close()
        self._err.close()
        return Measured(self.argv, code, wall, own, children, out, err)


def measure(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float | None = None
) -> Measured:
    """Run ``argv`` to its end; raise ``RuntimeError`` with its stderr if it failed."""
    done = Running(argv, cwd, env).finish(timeout)
    if done.code != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {done.code} after {done.wall:.1f} s:\n"
            f"{done.stderr[-3000:]}\n{done.stdout[-1000:]}"
        )
    return done


def spread(values: list[float], scale: float = 1.0, fmt: str = "{:.2f}") -> str:
    """``median [low-high]`` of ``values`` times ``scale``."""
    scaled = [value * scale for value in values]
    middle = fmt.format(statistics.median(scaled))
    if len(scaled) == 1:
        return middle
    return f"{middle} [{fmt.format(min(scaled))}-{fmt.format(max(scaled))}]"


def ratios(top: list[float], bottom: list[float]) -> list[float]:
    """Round-by-round ratios (round i of one side over round i of the other)."""
    return [a / b for a, b in zip(top, bottom, strict=True)]


def summary(values: list[float]) -> dict[str, float | list[float]]:
    """Median, low, high and the values themselves, for ``--json``."""
    return {
        "median": statistics.median(values),
        "low": min(values),
        "high": max(values),
        "values": values,
    }


def commit() -> str:
    """The short commit measured (``+dirty`` when tracked files have changes), and the last
    commit that changed the product's code (``orchestrator/``, ``adapters/``), which is what
    the figures are for when the commits since only touched benches or documents."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        code = subprocess.run(
            ["git", "-C", str(ROOT), "log", "-1", "--format=%h", "--", "orchestrator", "adapters"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{'+dirty' if dirty else ''} (product code as of {code})"


def machine() -> str:
    """The line every bench starts with: what was measured, on what, under what load."""
    return (
        f"commit {commit()}; {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at the start"
    )


def verdict(value: float, target: float, *, at_most: bool = True, unit: str = "") -> str:
    met = value <= target if at_most else value >= target
    sign = "<=" if at_most else ">="
    return f"target {sign} {target:g}{unit}: {'met' if met else 'NOT met'}"
