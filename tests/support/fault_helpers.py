"""Running the real orchestrator against the misbehaving CLIs of ``tests/support/fault_clis``.

``FaultRun`` is one repository, one run config and the ``council run`` process (``run``) or a
``Council`` in this process (``run_here``) driving it; the CLI is a ``command`` adapter
preset running one of the scripts with the environment a test gives it. Helpers read what
the run left behind: the task's stored state, its events, its branches, every byte under
``.council/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.council import Council
from orchestrator.state.file.record_files.codec import decode
from tests.support.cli_process_helpers import alive, events
from tests.support.scheduler_helpers import new_repo
from tests.support.timing import patience

FAULT_CLIS = Path(__file__).with_name("fault_clis")
COUNCIL = [sys.executable, "-m", "orchestrator.cli.app"]
TASK = "fault"
# Runs argv[2:], then writes the peak RSS (KiB) of it and everything it waited for to argv[1].
_MEASURED = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def kill_all(pids: list[int]) -> None:
    """Leave no sleeper behind for the rest of the suite, whatever a test found."""
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def as_uid(uid: int) -> list[str]:
    """The command prefix that runs a command as ``uid`` (its group too, no other)."""
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]


@dataclass
class Finished:
    """What ``council run --json`` left: its exit code, report, output and peak memory."""

    returncode: int
    stdout: bytes
    stderr: bytes
    seconds: float
    max_rss: int  # bytes: the largest of the orchestrator and every process it waited for

    @property
    def report(self) -> dict[str, Any]:
        return dict(json.loads(self.stdout))

    def task(self, task_id: str = TASK) -> dict[str, Any]:
        return next(t for t in self.report["tasks"] if t["task_id"] == task_id)


@dataclass
class FaultRun:
    tmp_path: Path
    script: str
    env: dict[str, str] = field(default_factory=dict)
    phases: list[dict[str, Any]] = field(default_factory=lambda: [{"name": "build"}])
    retry: dict[str, Any] = field(
        default_factory=lambda: {"max_retries": 0, "backoff_initial": 0.05, "backoff_max": 0.1}
    )
    task_timeout: float | None = None
    passthrough: list[str] = field(default_factory=list)
    output: dict[str, Any] = field(default_factory=dict)
    more: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)  # id: (script, env)
    scheduler: dict[str, Any] = field(default_factory=dict)  # over the quick test settings
    # The run's ``sandbox:`` (None: the default, ``auto``); ``"none"`` for the tests of what
    # the orchestrator's own checks do where there is no sandbox.
    sandbox: str | dict[str, Any] | None = None
    # Runs ``council run`` as this uid (``setpriv``; the test chowns what it must reach),
    # with ``python`` (the orchestrator's and the CLIs' interpreter) when this one's is not
    # that uid's to run.
    user: int | None = None
    python: str = sys.executable

    def __post_init__(self) -> None:
        self.repo = new_repo(self.tmp_path)
        self.council_dir = self.repo / ".council"
        self.config_path = self.tmp_path / "run.yaml"
        self.write_config()

    def config(self) -> dict[str, Any]:
        """One task per CLI: ``fault`` runs ``script``; each of ``more`` its own, each through
        an adapter of its own name."""
        clis = {TASK: (self.script, self.env), **self.more}
        tasks, adapters = [], {}
        for task_id, (script, env) in clis.items():
            task: dict[str, Any] = {"id": task_id, "prompt": "Do the work.", "adapters": [task_id]}
            if self.task_timeout is not None:
                task["timeout"] = self.task_timeout
            options: dict[str, Any] = {
                "binary": self.python,
                "args": [str(FAULT_CLIS / script), "{prompt}"],
                "passthrough_env": self.passthrough,
                **self.output,
            }
            tasks.append(task)
            adapters[task_id] = {"type": "command", "options": options, "env": env}
        sandbox = {} if self.sandbox is None else {"sandbox": self.sandbox}
        return {
            **sandbox,
            "repo": str(self.repo),
            "adapters": adapters,
            "default_adapter": TASK,
            "capacity": {"sessions": len(tasks)},
            "workflow": {"phases": self.phases},
            "retry": self.retry,
            "scheduler": {
                "tick": 0.05,
                "heartbeat_interval": 0.5,
                "stale_threshold": 30,
                **self.scheduler,
            },
            "tasks": tasks,
        }

    def write_config(self) -> None:
        self.config_path.write_text(json.dumps(self.config(), indent=2))  # JSON is YAML

    def run(
        self,
        *,
        timeout: float = 60.0,
        env: dict[str, str] | None = None,
        as_json: bool = True,
        user: int | None = None,
    ) -> Finished:
        """``council run [--json]`` as a process; returns once it has exited. With ``user``,
        as that uid and gid (``setpriv``; ``spare_user`` makes a directory it owns).

        It is started by a small Python wrapper that reports its children's peak RSS: a child
        forked straight from the test process would inherit the test's own high-water mark
        (Linux keeps the larger of the pre-exec and post-exec peaks).
        """
        out, err = self.tmp_path / "council.out", self.tmp_path / "council.err"
        peak = self.tmp_path / "council.maxrss"
        argv = [self.python, *COUNCIL[1:], "run", str(self.config_path)]
        argv += ["--json"] if as_json else []
        user = self.user if user is None else user
        started = time.monotonic()
        with out.open("wb") as stdout, err.open("wb") as stderr:
            as_user = [] if user is None else as_uid(user)
            process = subprocess.Popen(
                [*as_user, self.python, "-c", _MEASURED, str(peak), *argv],
                cwd=self.tmp_path,
                stdout=stdout,
                stderr=stderr,
                env={**os.environ, "COUNCIL_DISABLE_PLUGINS": "1", **(env or {})},
                start_new_session=True,
            )
            try:
                returncode = process.wait(timeout=patience(timeout))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                raise TimeoutError(f"council run did not finish within {timeout:g}s") from None
        return Finished(
            returncode=returncode,
            stdout=out.read_bytes(),
            stderr=err.read_bytes(),
            seconds=time.monotonic() - started,
            max_rss=int(peak.read_text()) * 1024,
        )

    async def run_here(self) -> dict[str, Any]:
        """The same run through the ``Council`` API in this process (no interpreter to start,
        which is most of a small run's time); its report, as ``--json`` would print it."""
        async with Council.from_config(self.config_path) as council:
            report = await council.run()
        return dict(report.model_dump(mode="json"))

    def state(self, task_id: str = TASK) -> dict[str, Any]:
        """The task's stored record, read straight from its file."""
        current = self.council_dir / "state" / "tasks" / task_id / "current.json"
        return dict(json.loads(decode(current.read_bytes())))

    def files(self) -> Iterator[Path]:
        """Every regular file under ``.council/``."""
        for root, _dirs, names in os.walk(self.council_dir):
            for name in names:
                path = Path(root) / name
                if path.is_file() and not path.is_symlink():
                    yield path

    def logs(self, task_id: str = TASK) -> list[Path]:
        return sorted((self.council_dir / "logs").glob(f"{task_id}-*.log"))

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The run's events (``.council/events.jsonl`` and its archives), of one type if
        ``kind`` is given."""
        return [event for event in events(self.repo) if kind is None or event["type"] == kind]

    def branch_has(self, branch: str, path: str) -> bool:
        """Whether ``branch`` exists and holds ``path`` in its tip."""
        done = subprocess.run(
            ["git", "-C", str(self.repo), "cat-file", "-e", f"refs/heads/{branch}:{path}"],
            capture_output=True,
        )
        return done.returncode == 0

    def on_main(self, path: str) -> bool:
        return self.branch_has("main", path)
