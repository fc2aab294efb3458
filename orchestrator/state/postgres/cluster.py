"""A throwaway local PostgreSQL cluster from the machine's own server binaries (``initdb``,
``pg_ctl``): the embedded way to try team mode on one machine (``council db up``), and the
server the tests start.

The cluster lives in a directory of its own (``data/``, the server log, and a note of where
it listens). It listens on a unix socket in a short directory under the system's temporary
directory (a socket path may not be longer than 107 bytes), and on a loopback TCP port too
when one is asked for. Its one role, ``council``, trusts local connections: it is for trying
things out and for tests, never for a team's shared server.

PostgreSQL refuses to run as root; run as root, the cluster's files belong to the ``postgres``
user and its commands run as that user (``runuser``).

Whether the server runs is decided from the live process, never from files alone: a server
killed with SIGKILL (or a machine that crashed) leaves ``postmaster.pid`` behind, and a reboot
or a temporary-directory cleaner takes the socket away from a server that may still run.
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import json
import os
import pwd
import re
import shutil
import socket
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import anyio

from orchestrator.errors import RunError
from orchestrator.process.command import CommandResult, run_command

__all__ = ["ROLE", "LocalCluster", "Started", "find_server_binaries"]

ROLE = "council"
DATABASE = "council"
_STATE = "cluster.json"  # where it listens
_SEARCH = ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin", "/opt/homebrew/bin")
# What the server logs when a killed predecessor is not quite gone yet: its pid still exists
# for a moment (not yet reaped), or its orphaned backends still hold the shared memory.
_TRANSIENT = ('lock file "postmaster.pid" already exists', "is still in use")
_START_ATTEMPTS = 20  # half a second apart
# The server's complaints, with the LOG lines that say why (a bind refused, say).
_LOG_LINE = re.compile(r"\b(?:FATAL|PANIC|ERROR):\s+.*|\bLOG:\s+could not .*")

Progress = Callable[[str], None]


class Started(StrEnum):
    """What ``LocalCluster.up`` did."""

    CREATED = "created"  # a new cluster, made and started
    STARTED = "started"  # an existing cluster, started
    RESTARTED = "restarted"  # it ran without its socket (deleted under it), restarted
    RUNNING = "running"  # it was already running: nothing done


def find_server_binaries() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``; ``RunError`` saying where it looked."""
    found = shutil.which("pg_ctl")
    if found is not None and shutil.which("initdb") is not None:
        return Path(found).resolve().parent
    for pattern in _SEARCH:
        for candidate in sorted(Path("/").glob(pattern.lstrip("/")), reverse=True):
            if (candidate / "pg_ctl").is_file() and (candidate / "initdb").is_file():
                return candidate
    raise RunError(
        "the PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH nor in "
        f"{', '.join(_SEARCH)}: install the PostgreSQL server (Debian: postgresql)"
    )


@dataclass(frozen=True)
class LocalCluster:
    directory: Path

    def __post_init__(self) -> None:
        # The server's commands run with / as their working directory: a relative path
        # would name a directory there.
        object.__setattr__(self, "directory", Path(os.path.abspath(self.directory)))

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "server.log"

    @property
    def socket_dir(self) -> Path:
        digest = hashlib.sha256(str(self.directory.resolve()).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"council-pg-{digest}"

    def exists(self) -> bool:
        """A cluster was made in the directory (it may not run)."""
        return (self.data / "PG_VERSION").is_file()

    def version(self) -> str | None:
        """The major version of PostgreSQL the cluster was made with."""
        try:
            return (self.data / "PG_VERSION").read_text().strip()
        except OSError:
            return None

    def url(self, database: str = DATABASE) -> str:
        """The connection string of the cluster (``RunError`` if it was never started)."""
        port = self._listening()[0]
        return f"postgresql://{ROLE}@/{database}?host={self.socket_dir}&port={port}"

    def tcp_url(self, database: str = DATABASE) -> str | None:
        """The loopback TCP connection string, None when it listens on its socket only."""
        port, tcp = self._listening()
        return f"postgresql://{ROLE}@127.0.0.1:{port}/{database}" if tcp else None

    def tcp_port(self) -> int | None:
        port, tcp = self._listening()
        return port if tcp else None

    def running(self) -> bool:
        """Its server runs and can be reached on its socket."""
        return self.server_pid() is not None and self._socket_present()

    def server_pid(self) -> int | None:
        """The pid of this cluster's live server, None when none runs."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None  # the pid file of a server that was killed or crashed
        except PermissionError:
            pass  # alive, and another user's
        return pid if _serves(pid, self.data) else None

    async def up(self, *, port: int | None = None, progress: Progress | None = None) -> Started:
        """Make the cluster if it is new, and start it unless it runs; ``RunError`` naming
        what went wrong (the server's own words, and where its log is)."""
        say = progress or _quiet
        bin_dir = find_server_binaries()
        as_server = _server_user()
        created = False
        if port is not None and self.server_pid() is None:
            _check_port_free(port)  # before making anything
        if not self.exists():
            if as_server is not None:
                _check_reachable(self.directory, as_server)  # before making anything
            self.directory.mkdir(parents=True, exist_ok=True)
            if as_server is not None:
                _check_reachable(self.directory, as_server)  # what mkdir made, under umask
            _hand_over(self.directory, as_server)
            say(f"creating a PostgreSQL cluster in {self.directory} (initdb, a few seconds)")
            initdb = [str(bin_dir / "initdb"), "-D", str(self.data), "-U", ROLE]
            initdb += ["--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"]
            self._check(await self._run(as_server, initdb), "initdb")
            created = True
        if self.server_pid() is not None:
            if self._socket_present():
                return Started.RUNNING
            say("its socket was deleted while it ran: restarting the server")
            self._make_socket_dir(as_server)
            await self.restart()
            return Started.RESTARTED
        self._make_socket_dir(as_server)
        say(f"starting the PostgreSQL server of {self.directory}")
        await self._start(bin_dir, as_server, port)
        (self.directory / _STATE).write_text(json.dumps({"port": port or 5432, "tcp": bool(port)}))
        socket_args = ["-h", str(self.socket_dir), "-p", str(port or 5432), "-U", ROLE]
        createdb = [str(bin_dir / "createdb"), *socket_args, "--maintenance-db=postgres", DATABASE]
        self._check(await self._run(as_server, createdb), "createdb", unless="already exists")
        return Started.CREATED if created else Started.STARTED

    async def down(self) -> bool:
        """Stop the server (fast shutdown) if it runs; its files stay for the next ``up``, but
        not its socket directory in the machine's temporary directory, which ``up`` makes
        again (left there, it outlived the cluster's own directory for good). False when it
        was not running."""
        if self.server_pid() is None:
            self._remove_socket_dir()
            return False
        bin_dir = find_server_binaries()
        stop = [str(bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]
        self._check(await self._run(_server_user(), stop), "stop")
        self._remove_socket_dir()
        return True

    def _remove_socket_dir(self) -> None:
        """The stopped server's socket directory removed when it is empty (a socket or lock
        file in it: a server still uses it, or another user's is there; both are left)."""
        with contextlib.suppress(OSError):
            self.socket_dir.rmdir()

    async def restart(self, wait: float = 60.0) -> None:
        """Restart the server where it stands (the tests' database outage); ``wait``: seconds
        ``pg_ctl`` waits for the shutdown and again for the start."""
        bin_dir = find_server_binaries()
        # -l again: without it the new server would write to (and hold open) our pipe.
        restart = [str(bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log)]
        restart += ["-m", "fast", "-w", "-t", str(max(1, round(wait))), "restart"]
        mark = self._log_size()
        self._check(await self._run(_server_user(), restart), "restart", log_from=mark)

    async def _start(self, bin_dir: Path, as_server: str | None, port: int | None) -> None:
        listen = f"-c listen_addresses={'127.0.0.1' if port else chr(39) * 2}"
        options = f"{listen} -k {self.socket_dir} -p {port or 5432}"
        start = [str(bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log)]
        start += ["-o", options, "-w", "-t", "60", "start"]
        for attempt in range(_START_ATTEMPTS):
            mark = self._log_size()
            result = await self._run(as_server, start)
            if result.ok:
                return
            said = self._log_since(mark)
            if attempt + 1 < _START_ATTEMPTS and any(text in said for text in _TRANSIENT):
                await anyio.sleep(0.5)
                continue
            self._check(result, "start", log_from=mark)

    def _make_socket_dir(self, as_server: str | None) -> None:
        where = self.socket_dir
        where.mkdir(mode=0o700, exist_ok=True)
        # Its name is predictable in a directory everyone writes to: refuse one planted by
        # another user, whose server would receive our connections.
        info = where.lstat()
        owners = {os.geteuid()} | ({pwd.getpwnam(as_server).pw_uid} if as_server else set())
        if not stat.S_ISDIR(info.st_mode) or info.st_uid not in owners:
            raise RunError(
                f"{where} (the cluster's socket directory) belongs to someone else or is not "
                "a directory: remove it and try again"
            )
        where.chmod(0o700)
        _hand_over(where, as_server)

    def _socket_present(self) -> bool:
        try:
            port = self._listening()[0]
        except RunError:
            return False
        return (self.socket_dir / f".s.PGSQL.{port}").is_socket()

    def _listening(self) -> tuple[int, bool]:
        try:
            loaded = json.loads((self.directory / _STATE).read_text())
            return int(loaded["port"]), bool(loaded.get("tcp", False))
        except (OSError, ValueError, KeyError, TypeError):
            raise RunError(
                f"no local PostgreSQL cluster is set up in {self.directory}: "
                f"run `council db up {self.directory}` first"
            ) from None

    async def _run(self, as_server: str | None, argv: list[str]) -> CommandResult:
        prefix = ["runuser", "-u", as_server, "--"] if as_server else []
        return await run_command([*prefix, *argv], cwd=Path("/"), timeout=120, mark=False)

    def _check(
        self,
        result: CommandResult,
        what: str,
        unless: str | None = None,
        log_from: int | None = None,
    ) -> None:
        if result.ok or (unless is not None and unless in result.output):
            return
        said = self._log_since(log_from) if log_from is not None else ""
        reason = _reason(said, result.output)
        where = f" (server log: {self.log})" if self.log.is_file() else ""
        raise RunError(f"PostgreSQL {what} in {self.directory} failed: {reason}{where}")

    def _log_size(self) -> int:
        try:
            return self.log.stat().st_size
        except OSError:
            return 0

    def _log_since(self, offset: int) -> str:
        try:
            with self.log.open("rb") as file:
                file.seek(offset)
                return file.read().decode(errors="replace")
        except OSError:
            return ""


def _reason(log: str, output: str) -> str:
    """One line: the server's complaints, else the last line the command printed."""
    complaints = [
        " ".join(m.group(0).split()) for m in map(_LOG_LINE.search, log.splitlines()) if m
    ]
    if complaints:
        return "; ".join(dict.fromkeys(complaints))
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or "fatal" in line.lower()]
    return "; ".join(errors[-3:] or lines[-1:]) or "no output"


def _serves(pid: int, data: Path) -> bool:
    """``pid`` is a PostgreSQL server of ``data`` (not a stranger that got a dead server's
    pid after a reboot). Where there is no /proc to ask, a live pid is taken as the server."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return True
    if b"-D" in args[:-1]:
        given = Path(os.fsdecode(args[args.index(b"-D") + 1]))
        return given.resolve() == data.resolve()
    # Started without -D (PGDATA from the environment); a zombie has no arguments at all.
    return Path(os.fsdecode(args[0])).name in ("postgres", "postmaster")


def _server_user() -> str | None:
    """The user the server runs as: ``postgres`` when this process is root, else this one."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise RunError(
            "PostgreSQL will not run as root and there is no `postgres` user to run it as: "
            "run `council db up` as an ordinary user"
        ) from None
    return "postgres"


def _check_reachable(directory: Path, user: str) -> None:
    """``RunError`` naming the first directory above ``directory`` that ``user`` may not
    enter: as root the server runs as that user, and initdb would fail with a less clear
    complaint."""
    entry = pwd.getpwnam(user)
    groups = {entry.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
    for parent in reversed(directory.parents):
        try:
            info = parent.stat()
        except FileNotFoundError:
            return  # made later by mkdir; checked again then
        if info.st_uid == entry.pw_uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid in groups:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            raise RunError(
                f"as root the PostgreSQL server runs as {user}, which cannot enter {parent} "
                f"(mode {stat.S_IMODE(info.st_mode):o}) to reach {directory}: use a directory "
                "every user can reach (such as one under /srv or /tmp), or run as an ordinary user"
            )


def _check_port_free(port: int) -> None:
    """``RunError`` when something listens on the loopback port already (the server would
    only say so in its log)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the server binds: connections of a stopped server in TIME_WAIT do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise RunError(
                f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc} "
                "(another server uses it?): choose another port with --port"
            ) from None


def _hand_over(directory: Path, user: str | None) -> None:
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(directory, entry.pw_uid, entry.pw_gid)


def _quiet(message: str) -> None:
    del message
