"""The invariant checker run after every fault: what must hold of a repository, its state store
and this machine once a run (killed, resumed, or both) has ended.

``problems(repo, ...)`` lists every broken promise as a sentence (empty when all hold), and
``check(repo, ...)`` fails the test with all of them at once:

- **no task stranded**: every task is ``done``, ``failed``, ``cancelled`` or ``conflict``, or
  belongs to a session that ``council resume`` would pick up (active or interrupted), or to one
  that was never recorded (killed while it was being created: the next ``council run`` takes
  its tasks over); with ``all_done`` every task is ``done``, and a done task's
  ``merged_commit`` is on the base;
- **nothing lost**: every commit in the object database that is not a merge-queue commit (those
  carry a ``Council-Task`` trailer and may be left over from a merge that never moved the base)
  is reachable from the base, a kept ``council/`` branch or a ``refs/council/`` ref (rescue
  refs): the CLIs' work, committed by the orchestrator, is never only in an unreferenced object;
- **nothing merged twice**: each ``Council-Task`` trailer appears at most once on the base's
  first-parent history (the merge queue writes one merge commit per landing);
- **every CLI counted once**: the cost ledger holds a record for every CLI that ran, and no
  more closed records than CLIs that ran;
- **versions only increase**: within each record of the state store no history version is
  above the current one (one equal to it is the link a write makes just before its replace,
  left by a kill in between), and against a ``snapshot`` taken earlier no record went back;
- **no conflict markers** in any file of the base's tree;
- **no worktree left for a done task** (its work is on the base; git's lock reason on each
  council worktree names its task);
- **no process left**: no process works inside the repository's ``.council/`` (worktrees,
  homes), and no scripted CLI runs under ``root``;
- **no stale lock blocks the next run**: the store answers a status (``stored_report``, once a
  session was recorded), every path the ownership registry names and the merge lock can be
  taken, every record lock and file lock under ``.council`` can be taken now, and git has no
  ``*.lock`` file left in the repository's git directory.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio

from orchestrator import filelock
from orchestrator.council import stored_report
from orchestrator.locks.manager import LockManager
from orchestrator.locks.registry import FILE_OWNERS
from orchestrator.models import (
    ACTIVE_SESSION_STATUSES,
    TERMINAL_TASK_STATUSES,
    TaskStatus,
)
from orchestrator.state import FileStateStore
from orchestrator.state.file.record_files.codec import decode
from orchestrator.state.file.record_files.records import RecordKind

Snapshot = dict[str, int]  # "<kind>/<key>" -> version
KEEPERS = ("--glob=refs/heads/council/*", "--glob=refs/council/*")


def recorded_sessions(repo: Path) -> list[str]:
    """The sessions the repository's store holds: none when the first run was killed before
    its session was written, and then ``council run`` (not ``resume``) is what comes next."""
    sessions = FileStateStore.for_repo(repo).sessions
    # A directory alone is a session killed before its first version landed.
    return [key for key in sessions.keys() if sessions.load(key) is not None]  # noqa: SIM118


def resumable_sessions(repo: Path) -> list[str]:
    """The recorded sessions ``council resume`` would continue (active or interrupted)."""
    sessions = FileStateStore.for_repo(repo).sessions
    found = []
    for key in sessions.keys():  # noqa: SIM118
        record = sessions.load(key)
        if record is not None and record.status in ACTIVE_SESSION_STATUSES:
            found.append(key)
    return found


def snapshot(repo: Path) -> Snapshot:
    """The version of every record in the repository's state store now."""
    return {name: version for name, version, _ in _records(repo)}


def check(
    repo: Path,
    *,
    base: str = "main",
    before: Snapshot | None = None,
    all_done: bool = False,
    root: Path | None = None,
    settled: bool = True,
) -> None:
    found = problems(repo, base=base, before=before, all_done=all_done, root=root, settled=settled)
    assert not found, "invariants broken:\n- " + "\n- ".join(found)


def problems(
    repo: Path,
    *,
    base: str = "main",
    before: Snapshot | None = None,
    all_done: bool = False,
    root: Path | None = None,
    settled: bool = True,
    lock_wait: float = 5.0,
) -> list[str]:
    """Every broken invariant (module doc). ``settled=False`` is for a run just killed: the
    processes it left are stopped by the next resume, so they are not counted yet.
    ``lock_wait`` bounds the wait for the merge lock (free, it is taken at once)."""
    found: list[str] = []
    found += _stranded(repo, base, all_done)
    found += _lost_commits(repo, base)
    found += _merged_twice(repo, base)
    found += _versions(repo, before)
    found += _conflict_markers(repo, base)
    found += _ledger_counts(repo)
    if settled:
        found += _processes_left(repo, root)
        found += _worktrees_left(repo)
    found += _stale_locks(repo, lock_wait)
    return found


# -- the cost ledger -----------------------------------------------------------------------


def _ledger_counts(repo: Path) -> list[str]:
    """Every CLI that ran is counted once in the ledger (``orchestrator.spend.ledger``): at
    least as many records as CLI logs (a record is opened before its CLI starts; one whose
    CLI never started has no log), and no more closed records than logs (a closed record is a
    CLI that ran and said what it spent)."""
    state = repo / ".council" / "state"
    records, logs = state / "records" / "ledger", repo / ".council" / "logs"
    if not records.is_dir():
        return []
    # A state deleted and made again (its store-id anew) lost the ledger of the runs before:
    # only CLIs that ran since it was made are this ledger's to count.
    try:
        born = (state / "store-id").stat().st_mtime
    except OSError:
        born = 0.0
    # A run whose state was deleted under it may still close a call's record there, in the
    # directory its store makes again, before the next run's store names it (store-id): that
    # CLI's log is older than the store, but its record names it, so it counts.
    closed = opened = 0
    named: set[str] = set()
    for current in records.glob("*/current.json"):
        data = json.loads(decode(current.read_bytes()))["data"]
        opened += 1
        closed += data.get("ended_at") is not None
        named.add(str(data.get("log") or ""))
    ran = sum(
        1
        for log in logs.glob("*.log")
        if not log.name.startswith("setup-") and (log.stat().st_mtime >= born or log.name in named)
    )
    if closed <= ran <= opened:
        return []
    return [f"ledger: {opened} calls recorded ({closed} closed) for {ran} CLI runs"]


# -- tasks ---------------------------------------------------------------------------------


def _stranded(repo: Path, base: str, all_done: bool) -> list[str]:
    async def read() -> list[str]:
        found = []
        async with FileStateStore.for_repo(repo) as store:
            for task in await store.list_tasks():
                session = await store.get_session(task.session_id) if task.session_id else None
                if all_done and task.status != TaskStatus.DONE:
                    found.append(f"task {task.task_id} is {task.status}, not done: {task.error}")
                elif (
                    task.status not in TERMINAL_TASK_STATUSES
                    and session is not None
                    and session.status not in ACTIVE_SESSION_STATUSES
                ):
                    found.append(
                        f"task {task.task_id} is {task.status} in a {session.status} session"
                    )
                commit = task.merged_commit
                if task.status == TaskStatus.DONE and (
                    not commit or not _is_ancestor(repo, commit, base)
                ):
                    found.append(f"task {task.task_id} is done but {commit} is not on {base}")
        return found

    return anyio.run(read)


# -- git -------------------------------------------------------------------------------------


def _git(repo: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {done.stderr}")
    return done.stdout


def _is_ancestor(repo: Path, commit: str, base: str) -> bool:
    args = ["git", "-C", str(repo), "merge-base", "--is-ancestor", commit, base]
    return subprocess.run(args, capture_output=True, check=False).returncode == 0


def _lost_commits(repo: Path, base: str) -> list[str]:
    objects = _git(
        repo, "cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype)"
    )
    commits = {line.split()[0] for line in objects.splitlines() if line.endswith(" commit")}
    kept = set(_git(repo, "rev-list", base, *KEEPERS).split())
    unreachable = sorted(commits - kept)
    if not unreachable:
        return []
    shown = _git(
        repo,
        "show",
        "-s",
        "--format=%H%x09%(trailers:key=Council-Task,valueonly,separator=%x2C)%x09%s",
        *unreachable,
    )
    found = []
    for line in shown.splitlines():
        sha, trailer, subject = line.split("\t", 2)
        if not trailer:  # a merge-queue commit that never landed carries a trailer: harmless
            found.append(f"commit {sha[:12]} ({subject!r}) is on no branch or council ref")
    return found


def _merged_twice(repo: Path, base: str) -> list[str]:
    log = _git(
        repo, "log", "--first-parent", "--format=%(trailers:key=Council-Task,valueonly)", base
    )
    counts = Counter(line.strip() for line in log.splitlines() if line.strip())
    return [f"task {task} merged {n} times" for task, n in sorted(counts.items()) if n > 1]


def _worktrees_left(repo: Path) -> list[str]:
    async def done_tasks() -> set[str]:
        async with FileStateStore.for_repo(repo) as store:
            return {t.task_id for t in await store.list_tasks() if t.status == TaskStatus.DONE}

    done = anyio.run(done_tasks)
    found = []
    for block in _git(repo, "worktree", "list", "--porcelain").split("\n\n"):
        lines = dict(line.partition(" ")[::2] for line in block.splitlines())
        task = lines.get("locked", "").rpartition(" task=")[2]
        if task in done:
            found.append(f"worktree {lines['worktree']} of done task {task} is left")
    return found


def _conflict_markers(repo: Path, base: str) -> list[str]:
    grep = subprocess.run(
        ["git", "-C", str(repo), "grep", "-n", "-E", "^(<{7}|>{7})( |$)", base, "--"],
        capture_output=True,
        text=True,
        check=False,
    )
    return [f"conflict marker on {base}: {line}" for line in grep.stdout.splitlines()]


# -- the state store ---------------------------------------------------------------------------


def _kinds(store: FileStateStore) -> list[RecordKind[Any]]:
    kinds: list[RecordKind[Any]] = [store.tasks, store.sessions, store.counters]
    records = store.root / "records"
    if records.is_dir():
        kinds += [store.core.namespace(p.name) for p in sorted(records.iterdir()) if p.is_dir()]
    return kinds


def _records(repo: Path) -> Iterator[tuple[str, int, list[int]]]:
    """(kind/key, current version, history versions) of every record."""
    store = FileStateStore.for_repo(repo)
    for kind in _kinds(store):
        for key in kind.keys():  # noqa: SIM118 (a record kind, not a dict)
            record = kind.load(key)
            if record is not None:
                version = int(getattr(record, "version", 0))
                yield f"{kind.name}/{key}", version, kind.history_versions(key)


def _versions(repo: Path, before: Snapshot | None) -> list[str]:
    found = []
    now: Snapshot = {}
    for name, version, history in _records(repo):
        now[name] = version
        if any(old > version for old in history):
            found.append(f"{name}: history {history} is ahead of its current version {version}")
    for name, version in (before or {}).items():
        if name.startswith(("tasks/", "sessions/", "counters/")) and now.get(name, 0) < version:
            found.append(f"{name} went back from version {version} to {now.get(name)}")
    return found


# -- processes and locks -----------------------------------------------------------------------


def _processes_left(repo: Path, root: Path | None) -> list[str]:
    council = (repo / ".council").resolve()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # gone meanwhile, or not ours to look at
            continue
        if cwd.is_relative_to(council):
            found.append(f"pid {entry.name} still runs in {cwd}: {command[:200]}")
        elif root is not None and "scripted_cli" in command and cwd.is_relative_to(root):
            found.append(f"scripted CLI pid {entry.name} still runs in {cwd}")
    return found


def _stale_locks(repo: Path, lock_wait: float) -> list[str]:
    found = []
    council = repo / ".council"
    for lock in sorted(set(council.rglob("*.lock")) | set(council.rglob(".lock"))):
        if lock.relative_to(council).parts[0] == "worktrees":
            continue  # files of the worktrees' own checkouts, not council's locks
        held = filelock.try_acquire(lock)
        if held is None:
            found.append(f"lock {lock.relative_to(repo)} is held by a process still running")
        else:
            held.release()
    state = council / "state"
    kinds = [state / "tasks", state / "sessions", state / "counters"]
    kinds += [p for p in (state / "records").glob("*") if p.is_dir()]
    for record in sorted(r for kind in kinds for r in kind.glob("*") if r.is_dir()):
        # A record's lock is its directory (``filelock``, ``directory=True``).
        held = filelock.try_acquire(record, root=state, directory=True)
        if held is None:
            found.append(f"record lock {record.relative_to(repo)} is held by a process running")
        else:
            held.release()
    git_dir = Path(_git(repo, "rev-parse", "--absolute-git-dir").strip())
    found += [f"git lock left: {p}" for p in sorted(git_dir.rglob("*.lock"))]

    async def status_and_merge_lock() -> None:
        if recorded_sessions(repo):
            await stored_report(council / "state")
        async with FileStateStore.for_repo(repo) as store, LockManager(repo, store=store) as locks:
            # Every path someone is registered as owning (a dead run's entries stay until the
            # next acquirer takes them over), and the merge lock.
            owned = [str(r.data["path"]) for r in await store.list_records(FILE_OWNERS)]
            await locks.acquire_file_locks("invariant-check", owned, timeout=lock_wait)
            async with locks.merge_lock("invariant-check", timeout=lock_wait):
                pass
            await locks.release_all_session_locks("invariant-check")

    try:
        anyio.run(status_and_merge_lock)
    except Exception as exc:
        found.append(f"the next run would be blocked: {type(exc).__name__}: {exc}")
    return found
