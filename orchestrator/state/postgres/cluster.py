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
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import RunError
from orchestrator.process.command import CommandResult, run_command

__all__ = ["ROLE", "LocalCluster", "find_server_binaries"]

ROLE = "council"
DATABASE = "council"
_STATE = "cluster.json"  # where it listens
_SEARCH = ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin", "/opt/homebrew/bin")


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

    def url(self, database: str = DATABASE) -> str:
        """The connection string of the running cluster (``RunError`` if it is not set up)."""
        listening = self._listening()
        url = f"postgresql://{ROLE}@/{database}?host={self.socket_dir}"
        port = listening.get("port")
        return f"{url}&port={port}" if port else url

    def tcp_url(self, database: str = DATABASE) -> str | None:
        port = self._listening().get("port")
        return f"postgresql://{ROLE}@127.0.0.1:{port}/{database}" if port else None

    def running(self) -> bool:
        return (self.data / "postmaster.pid").is_file() and self.socket_dir.is_dir()

    async def up(self, *, port: int | None = None) -> None:
        """Make the cluster if it is new, and start it (``RunError`` with the server's log)."""
        bin_dir = find_server_binaries()
        as_server = _server_user()
        if not (self.data / "PG_VERSION").is_file():
            self.directory.mkdir(parents=True, exist_ok=True)
            _hand_over(self.directory, as_server)
            initdb = [str(bin_dir / "initdb"), "-D", str(self.data), "-U", ROLE]
            initdb += ["--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"]
            hint = (
                f"; as root the server runs as {as_server}, which must be able to reach "
                f"{self.directory} (every directory above it searchable by others)"
                if as_server
                else ""
            )
            await self._run(as_server, initdb, "initdb", hint=hint)
        if self.running():
            return
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        _hand_over(self.socket_dir, as_server)
        listen = f"-c listen_addresses={'127.0.0.1' if port else chr(39) * 2}"
        options = f"{listen} -k {self.socket_dir} -p {port or 5432}"
        start = [str(bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log)]
        await self._run(as_server, [*start, "-o", options, "-w", "-t", "60", "start"], "start")
        (self.directory / _STATE).write_text(json.dumps({"port": port or 5432}))
        socket = ["-h", str(self.socket_dir), "-p", str(port or 5432), "-U", ROLE]
        createdb = [str(bin_dir / "createdb"), *socket, "--maintenance-db=postgres", DATABASE]
        await self._run(as_server, createdb, "createdb", unless="already exists")

    async def down(self) -> None:
        """Stop the cluster (fast shutdown); its files stay for the next ``up``."""
        if not (self.data / "postmaster.pid").is_file():
            return
        bin_dir = find_server_binaries()
        stop = [str(bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]
        await self._run(_server_user(), stop, "stop")

    async def restart(self) -> None:
        """Restart the server where it stands (the tests' database outage)."""
        bin_dir = find_server_binaries()
        restart = [str(bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "restart"]
        await self._run(_server_user(), restart, "restart")

    def _listening(self) -> dict[str, int]:
        try:
            loaded = json.loads((self.directory / _STATE).read_text())
        except (OSError, ValueError):
            raise RunError(
                f"no local PostgreSQL cluster is set up in {self.directory}: "
                f"run `council db up {self.directory}` first"
            ) from None
        return loaded if isinstance(loaded, dict) else {}

    async def _run(
        self,
        as_server: str | None,
        argv: list[str],
        what: str,
        unless: str | None = None,
        hint: str = "",
    ) -> CommandResult:
        prefix = ["runuser", "-u", as_server, "--"] if as_server else []
        result = await run_command([*prefix, *argv], cwd=Path("/"), timeout=120, mark=False)
        if not result.ok and not (unless is not None and unless in result.output):
            log = self.log.read_text(errors="replace")[-2000:] if self.log.is_file() else ""
            raise RunError(
                f"PostgreSQL {what} in {self.directory} failed{hint}: "
                f"{result.output.strip()[-2000:]}" + (f"\nserver log:\n{log}" if log else "")
            )
        return result


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


def _hand_over(directory: Path, user: str | None) -> None:
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
