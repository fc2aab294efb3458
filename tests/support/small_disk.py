"""Small file systems that really fill up, without root: tmpfs mounts in a private namespace.

``SmallDisk`` starts one holder process in a new user and mount namespace (``unshare --user
--map-root-user --mount``, which an unprivileged user may do where user namespaces are
enabled), mounts a tmpfs of a few MiB there, and runs commands inside that namespace with
``nsenter``: they see the tmpfs, nothing outside does. More tmpfs mounts can be stacked on
directories inside it (``mount``), so one test can fill exactly the file system that holds
the state, or the logs, or the repository, and leave the others alone. ``fill`` writes a file
until the kernel says ENOSPC; ``free`` removes it. From outside, ``view`` reads a path
through ``/proc/<holder>/root``, which shows the holder's mounts.

``unavailable()`` says why this cannot work here (no ``unshare``/``nsenter``, user
namespaces disabled), for a skip reason.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tests.support.timing import patience

__all__ = ["SmallDisk", "unavailable"]

_PROBE = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c"]
_HOLD = 'mount -t tmpfs -o size={size} tmpfs "$0" && echo ready && exec sleep 3600'


def unavailable() -> str | None:
    """Why a ``SmallDisk`` cannot be made on this machine, or None when it can."""
    for tool in ("unshare", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} (util-linux) is not installed"
    probe = subprocess.run(
        [*_PROBE, "mount -t tmpfs -o size=1m tmpfs /mnt"],
        capture_output=True,
        text=True,
        timeout=patience(30),
    )
    if probe.returncode != 0:
        return (
            "cannot mount a tmpfs in an unprivileged user namespace here "
            f"(unshare -U -r -m: {probe.stderr.strip() or probe.returncode}); "
            "user namespaces are disabled or restricted on this machine"
        )
    return None


class SmallDisk:
    """A tmpfs of ``size`` at ``base`` (an empty directory), seen only by commands run here."""

    def __init__(self, base: Path, size: str, env: dict[str, str]) -> None:
        self.base = base
        self.env = env
        base.mkdir(parents=True, exist_ok=True)
        self._holder = subprocess.Popen(
            [*_PROBE, _HOLD.format(size=size), base],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self._holder.stdout is not None
        if self._holder.stdout.readline().strip() != "ready":
            _, err = self._holder.communicate(timeout=patience(30))
            raise RuntimeError(f"could not mount the small disk at {base}: {err}")

    @property
    def pid(self) -> int:
        return self._holder.pid

    def command(self, argv: Sequence[str], cwd: Path | None = None) -> list[str]:
        """``argv`` wrapped to run inside the namespace (in ``cwd`` as seen there)."""
        where = [f"--wdns={cwd}"] if cwd is not None else []
        return ["nsenter", f"--target={self.pid}", "--user", "--mount", *where, *argv]

    def run(
        self, argv: Sequence[str], cwd: Path | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(argv, cwd),
            capture_output=True,
            text=True,
            env=self.env,
            timeout=patience(timeout),
        )

    def check(self, argv: Sequence[str], cwd: Path | None = None) -> str:
        done = self.run(argv, cwd)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr}")
        return done.stdout

    def popen(self, argv: Sequence[str], cwd: Path | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(argv, cwd),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )

    def mount(self, directory: Path, size: str) -> None:
        """Another tmpfs of ``size`` on ``directory`` (made if missing)."""
        self.check(["mkdir", "-p", str(directory)])
        self.check(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)])

    def fill(self, directory: Path) -> Path:
        """Write zeros to ``<directory>/.filler`` until the file system has no space left."""
        filler = directory / ".filler"
        done = self.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"])
        if "No space left on device" not in done.stderr:
            raise RuntimeError(f"{directory} did not fill up: {done.stderr}")
        return filler

    def free(self, filler: Path) -> None:
        self.check(["rm", "-f", str(filler)])

    def view(self, path: Path) -> Path:
        """``path`` as this process can read it: through the holder's root."""
        return Path(f"/proc/{self.pid}/root") / path.relative_to("/")

    def close(self) -> None:
        """End the holder; the mounts go with the last process inside the namespace."""
        if self._holder.poll() is None:
            os.kill(self._holder.pid, signal.SIGKILL)
        self._holder.communicate(timeout=patience(30))
