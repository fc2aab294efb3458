"""A run of many tasks starts at once: its session is recorded first, its tasks in batches
(one durable write, or one transaction, per batch), dispatch starts while the rest are still
being written, a stop during start-up leaves a session ``council resume`` finishes with every
task once, and ``council status`` shows the run meanwhile (``scheduler.session.recording``,
``state.file.task_batches``, ``StateStore.add_session_tasks``)."""

from __future__ import annotations

import contextvars
import json
import re
import signal
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import anyio
import pytest

from orchestrator.config.task import TaskConfig
from orchestrator.council import Council
from orchestrator.errors import StateError, TaskInActiveSession
from orchestrator.events import Event
from orchestrator.models import SessionStatus, TaskStatus
from orchestrator.safety.crashpoints import ENV as ENV_AT
from orchestrator.safety.crashpoints import SIGNAL_ENV
from orchestrator.scheduler.session import recording
from orchestrator.state import FileStateStore
from orchestrator.state.file import fsops, task_batches
from orchestrator.state.file.record_files import records
from orchestrator.state.postgres.core import PgCore
from orchestrator.state.protocol import StateStore, TaskInit
from orchestrator.workflow.task_run import TaskRun, WorkflowResult
from tests.support.council_process import COUNCIL, ENV, council, paused, wait_for
from tests.support.scheduler_helpers import Probe, new_repo, run_config
from tests.support.timing import patience

BATCH = recording.BATCH
# Leases far longer than a loaded machine can delay a renewal: a task run twice here would be
# the start's doing, not a heartbeat's.
_CALM: dict[str, Any] = {
    "scheduler": {"tick": 0.02, "heartbeat_interval": 0.5, "stale_threshold": "10m"}
}

# --- the store: a batch is one durable write, or one transaction ----------------------------


class _Writes:
    """What the file store wrote durably, and how many barriers it took, while a batch was
    being recorded (the writes of other work at the same time are not counted)."""

    def __init__(self) -> None:
        self.durable: list[Path] = []  # files written with their own fsync
        self.unsynced: list[Path] = []  # files written to be synced by a barrier
        self.in_place: list[str] = []  # new records made in place, synced by a barrier
        self.barriers = 0
        self.transactions = 0  # PostgreSQL


_COUNTING: contextvars.ContextVar[_Writes | None] = contextvars.ContextVar("counting", default=None)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Writes]:
    writes = _Writes()
    durable_write = fsops.durable_write

    def counting_write(path: Path, data: bytes, ops: Any, **kwargs: Any) -> None:
        seen = _COUNTING.get()
        if seen is not None:
            (seen.durable if kwargs.get("sync", True) else seen.unsynced).append(path)
        durable_write(path, data, ops, **kwargs)

    write_new = task_batches.write_new

    def counting_new(kind: Any, key: str, lock: Any, data: bytes) -> None:
        seen = _COUNTING.get()
        if seen is not None:
            seen.in_place.append(key)
        write_new(kind, key, lock, data)

    sync_all = fsops.FileOps.sync_all

    def counting_sync(self: fsops.FileOps, directory: Path) -> None:
        seen = _COUNTING.get()
        if seen is not None:
            seen.barriers += 1
        sync_all(self, directory)

    atomically = PgCore.atomically

    async def counting_atomically(self: PgCore, work: Any) -> Any:
        seen = _COUNTING.get()
        if seen is not None:
            seen.transactions += 1
        return await atomically(self, work)

    # The worker thread a batch runs in gets a copy of the caller's context (anyio), so the
    # counting follows the batch there and nowhere else.
    monkeypatch.setattr(records, "durable_write", counting_write)
    monkeypatch.setattr("orchestrator.state.file.intents.durable_write", counting_write)
    monkeypatch.setattr(task_batches, "write_new", counting_new)
    monkeypatch.setattr(fsops.FileOps, "sync_all", counting_sync)
    monkeypatch.setattr(PgCore, "atomically", counting_atomically)
    yield writes


async def _counted(writes: _Writes, call: Awaitable[int]) -> int:
    token = _COUNTING.set(writes)
    try:
        return await call
    finally:
        _COUNTING.reset(token)


@pytest.fixture(params=["file", pytest.param("postgres", marks=pytest.mark.postgres)])
def dsn(request: pytest.FixtureRequest) -> str | None:
    """None for the file store; a fresh database's URL for PostgreSQL."""
    return None if request.param == "file" else str(request.getfixturevalue("pg_dsn"))


@pytest.fixture
async def store(dsn: str | None, tmp_path: Path) -> AsyncIterator[StateStore]:
    if dsn is None:
        async with FileStateStore(tmp_path / "state") as file_store:
            yield file_store
        return
    from orchestrator.state.postgres.store import PostgresStateStore

    async with await PostgresStateStore.connect(dsn) as pg_store:
        yield pg_store


def _inits(ids: Sequence[str]) -> list[TaskInit]:
    return [{"task_id": task_id, "priority": 1} for task_id in ids]


async def test_tasks_are_recorded_in_batches_each_one_durable_write_or_transaction(
    store: StateStore, counted: _Writes
) -> None:
    ids = [f"t{n:05d}" for n in range(4 * BATCH)]
    session = await store.create_session({"note": "many"}, [], listed=ids)
    assert await store.list_tasks(session.session_id) == []  # listed, none recorded yet

    per_batch: list[_Writes] = []
    for start in range(0, len(ids), BATCH):
        writes = _Writes()
        recorded = await _counted(
            writes, store.add_session_tasks(session.session_id, _inits(ids[start : start + BATCH]))
        )
        assert recorded == BATCH
        per_batch.append(writes)

    tasks = {t.task_id: t for t in await store.list_tasks(session.session_id)}
    assert sorted(tasks) == ids
    assert all(t.status == TaskStatus.QUEUED and t.version == 1 for t in tasks.values())
    assert all(t.priority == 1 for t in tasks.values())
    if isinstance(store, FileStateStore):
        for n, writes in enumerate(per_batch):
            # One durable write (the batch's intent), the new records made in place and
            # synced by one barrier (``batch_records``): no temp file a record.
            assert [p.parent.name for p in writes.durable] == ["batches"]
            assert writes.unsynced == [] and writes.barriers == 1
            assert sorted(writes.in_place) == ids[n * BATCH : (n + 1) * BATCH]
        assert not list((store.root / "transactions" / "batches").glob("*.json"))
    else:
        assert [w.transactions for w in per_batch] == [1, 1, 1, 1]


async def test_a_batch_given_again_records_nothing_twice(store: StateStore) -> None:
    ids = [f"t{n}" for n in range(10)]
    session = await store.create_session({}, [], listed=ids)
    assert await store.add_session_tasks(session.session_id, _inits(ids[:6])) == 6
    # A stop cut the start short after the first batch; the resumed run gives them all.
    assert await store.add_session_tasks(session.session_id, _inits(ids)) == 4
    tasks = await store.list_tasks(session.session_id)
    assert sorted(t.task_id for t in tasks) == ids
    assert all(t.version == 1 for t in tasks)
    assert [await store.task_history(task_id) for task_id in ids] == [[]] * len(ids)


@pytest.mark.postgres
async def test_a_batch_waits_for_another_writer_of_the_session_then_skips_its_tasks(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workstations joining one run each record the tasks not recorded yet. A row lock cannot
    hold a task row that does not exist yet, so a batch takes the session's row before it
    looks: one that meets another workstation's batch under way waits for it, then finds its
    rows and skips them, in one transaction (before, both inserted the task: one went again,
    and three workstations could collide three times running and fail the run)."""
    import psycopg

    from orchestrator.models import TaskState
    from orchestrator.state.postgres.store import PostgresStateStore

    ids = [f"t{n:03d}" for n in range(8)]
    async with await PostgresStateStore.connect(pg_dsn) as store:
        session = await store.create_session({}, [], listed=ids)
        sid = session.session_id
        doc = TaskState(task_id="t000", session_id=sid, version=1).model_dump_json()
        async with await psycopg.AsyncConnection.connect(pg_dsn) as other:
            # the other workstation's batch, under way: the session's row held, t000 written
            await other.execute(
                "SELECT 1 FROM council.sessions WHERE session_id = %s FOR SHARE", (sid,)
            )
            await other.execute(
                "INSERT INTO council.tasks (session_id, version, status, doc, updated_at, "
                "task_id) VALUES (%s, 1, 'queued', %s, now(), 't000')",
                (sid, doc),
            )
            recorded: list[int] = []
            tries: list[object] = []
            real_tx = PgCore.tx

            def counted_tx(self: PgCore, *args: Any, **kwargs: Any) -> Any:
                tries.append(self)
                return real_tx(self, *args, **kwargs)

            async def record() -> None:
                monkeypatch.setattr(PgCore, "tx", counted_tx)
                try:
                    recorded.append(await store.add_session_tasks(sid, _inits(ids)))
                finally:
                    monkeypatch.setattr(PgCore, "tx", real_tx)

            async with anyio.create_task_group() as group:
                group.start_soon(record)
                await anyio.sleep(0.5)  # the batch is waiting now (or has not begun)
                await other.commit()
        tasks = await store.list_tasks(sid)
    assert recorded == [len(ids) - 1] and len(tries) == 1  # waited, never went again
    assert sorted(t.task_id for t in tasks) == ids and all(t.version == 1 for t in tasks)


async def test_a_task_another_active_session_holds_refuses_the_whole_batch(
    store: StateStore,
) -> None:
    first = await store.create_session({}, ["shared"])
    second = await store.create_session({}, [], listed=["fresh", "shared"])
    with pytest.raises(TaskInActiveSession):
        await store.add_session_tasks(second.session_id, ["fresh", "shared"])
    assert await store.get_task_state("fresh") is None  # nothing of the batch was written
    shared = await store.get_task_state("shared")
    assert shared is not None and shared.session_id == first.session_id


async def test_a_joiner_recording_into_a_session_a_later_run_took_over_leaves_it(
    store: StateStore,
) -> None:
    # A team's session ended elsewhere and a later run took its tasks over while a joiner was
    # still recording the ones it saw unrecorded: its batch is refused (the later session holds
    # them) and the joiner leaves the run (``ended_elsewhere``), neither failing nor taking
    # the tasks back; a session still active is not left so, its refusal raised.
    ended = await store.create_session({}, [], listed=["shared"])
    await store.update_session(ended.session_id, {"status": SessionStatus.COMPLETED})
    later = await store.create_session({}, ["shared"])
    run = cast(Any, SimpleNamespace(services=SimpleNamespace(store=store), stopping=False))
    run.session_id, run.ended_elsewhere = ended.session_id, False
    recorder = recording.TaskRecorder(run, cast(Any, None))
    recorder.plan([TaskConfig(id="shared", prompt="p")], resuming=True)
    assert await recorder.record_next() == 0
    assert run.ended_elsewhere and recorder.done
    shared = await store.get_task_state("shared")
    assert shared is not None and shared.session_id == later.session_id

    active = await store.create_session({}, [], listed=["shared"])
    run.session_id, run.ended_elsewhere = active.session_id, False
    recorder.plan([TaskConfig(id="shared", prompt="p")], resuming=True)
    with pytest.raises(TaskInActiveSession):
        await recorder.record_next()
    assert not run.ended_elsewhere


# --- the scheduler: the session first, then batches, dispatch before the last one --------------


class _Batches:
    """Every ``add_session_tasks`` of a store class: how many tasks each gave, how many it
    recorded, how many tasks were dispatched meanwhile, and a hook after each."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, cls: type[Any]) -> None:
        self.sizes: list[int] = []
        self.recorded: list[int] = []
        self.dispatched = 0
        self.after: Callable[[int], None] = lambda _: None
        original = cls.add_session_tasks

        async def add_session_tasks(
            store: StateStore, session_id: str, tasks: Sequence[TaskInit]
        ) -> int:
            self.sizes.append(len(tasks))
            done: int = await original(store, session_id, tasks)
            self.recorded.append(done)
            self.after(len(self.sizes))
            return done

        monkeypatch.setattr(cls, "add_session_tasks", add_session_tasks)

    def hear(self, event: Event) -> None:
        if event.type == "task.dispatched":
            self.dispatched += 1


async def test_a_start_of_10000_tasks_records_its_session_first_then_batches_and_dispatches_early(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [f"t{n:05d}" for n in range(10_000)]
    config = run_config(new_repo(tmp_path), [{"id": i, "prompt": "p"} for i in ids], **_CALM)
    batches = _Batches(monkeypatch, FileStateStore)
    order: list[str] = []

    def hear(event: Event) -> None:
        batches.hear(event)
        if event.type == "session.created" or (
            event.type == "state.updated" and event.data.get("kind") == "tasks"
        ):
            order.append(event.type)

    async with Council(config, workflow=Probe(pause=0.0)) as running:
        running.subscribe(hear)
        # Stopped during start-up, once a task was dispatched: before the last batch.
        batches.after = lambda _: running.stop() if batches.dispatched else None
        report = await running.run()
        store = running.scheduler.services.store
        assert running.scheduler.session_id is not None
        session = await store.get_session(running.scheduler.session_id)
        recorded = await store.list_tasks(running.scheduler.session_id)

    assert order[0] == "session.created"  # before any task record
    assert session is not None and session.task_ids == ids  # listed from the start
    assert session.status == SessionStatus.INTERRUPTED
    written = len(batches.sizes)
    assert written < len(ids) // BATCH  # dispatch started while tasks were still recorded
    assert batches.sizes == [BATCH] * written and batches.recorded == [BATCH] * written
    assert sorted(t.task_id for t in recorded) == ids[: written * BATCH]
    # The report lists every task of the run, those never recorded as queued.
    assert [t.task_id for t in report.tasks] == ids and report.totals.tasks == len(ids)
    assert report.totals.unrecorded == len(ids) - written * BATCH
    unrecorded = [t for t in report.tasks if t.task_id not in {r.task_id for r in recorded}]
    assert len(unrecorded) == report.totals.unrecorded
    assert {t.status for t in unrecorded} == {TaskStatus.QUEUED}


async def test_a_run_stopped_while_recording_resumes_with_each_task_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recording, "BATCH", 8)
    ids = [f"t{n:02d}" for n in range(40)]
    config = run_config(new_repo(tmp_path), [{"id": i, "prompt": "p"} for i in ids], **_CALM)
    batches = _Batches(monkeypatch, FileStateStore)
    probe = Probe(pause=0.0)

    async with Council(config, workflow=probe) as first:
        batches.after = lambda n: first.stop() if n == 2 else None
        stopped = await first.run()
    assert stopped.status == SessionStatus.INTERRUPTED
    assert stopped.totals.tasks == 40 and stopped.totals.unrecorded == 24
    assert [t.task_id for t in stopped.tasks] == ids

    batches.after = lambda _: None
    heard: list[str] = []
    async with Council(config, workflow=probe) as second:
        second.subscribe(lambda event: heard.append(event.type))
        resumed = await second.resume(stopped.session_id)

    assert resumed.status == SessionStatus.COMPLETED
    assert resumed.totals.done == len(ids) and resumed.totals.unrecorded == 0
    assert sum(batches.recorded) == len(ids)  # each task recorded once
    assert batches.sizes[2:] == [8, 8, 8]  # the rest, in batches, before the loop
    assert Counter(probe.calls) == Counter(dict.fromkeys(ids, 1))  # each task run once
    # No record started afresh or twice.
    assert "task.record_recreated" not in heard and "state.recovered" not in heard


# --- the command: status during start-up, a Ctrl-C honoured while recording ------------------


_MANY = 3_000  # many batches; 10,000 would only make the test slower (a config read twice)


def _big_config(tmp_path: Path, tasks: int) -> Path:
    repo = new_repo(tmp_path)
    lines = [
        f"repo: {repo}",
        "adapters: {cli: {type: scripted, options: {delay: 0}}}",
        "default_adapter: cli",
        "capacity: {sessions: 2}",
        "workflow: {phases: [{name: build}]}",
        "scheduler: {tick: 0.05, heartbeat_interval: 0.5, stale_threshold: 10m}",
        "tasks:",
    ]
    lines += [f'  - {{id: t{n:05d}, prompt: "WRITE n{n:05d}.txt note"}}' for n in range(tasks)]
    config = tmp_path / "run.yaml"
    config.write_text("\n".join(lines) + "\n")
    return config


def _recorded(repo: Path) -> int:
    tasks = repo / ".council" / "state" / "tasks"
    return sum(1 for _ in tasks.glob("*/current.json")) if tasks.is_dir() else 0


def _session(repo: Path) -> dict[str, Any] | None:
    from orchestrator.state.file.record_files.codec import decode

    for current in (repo / ".council" / "state" / "sessions").glob("*/current.json"):
        found: dict[str, Any] = json.loads(decode(current.read_bytes()))
        return found
    return None


def test_status_shows_a_starting_run_and_a_ctrl_c_while_recording_stops_it(
    tmp_path: Path,
) -> None:
    config = _big_config(tmp_path, _MANY)
    repo = tmp_path / "repo"
    # The run pauses itself (SIGSTOP) once its second batch is recorded: still starting.
    pausing = {**ENV, ENV_AT: "start.batch_recorded:2", SIGNAL_ENV: "SIGSTOP"}
    process = subprocess.Popen(
        [*COUNCIL, "run", str(config), "--json"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=pausing,
    )
    try:
        wait_for(lambda: paused(process.pid), "the run paused while recording", 90)
        session = _session(repo)
        assert session is not None and len(session["task_ids"]) == _MANY
        assert _recorded(repo) == 2 * BATCH

        looked = council(["status", str(config)], tmp_path, timeout=60)
        assert looked.returncode == 0, looked.stderr
        assert f"{session['session_id']}: active" in looked.stdout
        # Dispatch starts with the first batch recorded: a task may have landed already.
        done = re.search(rf"(\d+)/{_MANY} done", looked.stdout)
        assert done is not None and int(done.group(1)) <= 2 * BATCH, looked.stdout
        assert f"{_MANY - 2 * BATCH} of them not recorded yet (queued)" in looked.stdout

        process.send_signal(signal.SIGINT)  # a Ctrl-C, heard as the run goes on
        process.send_signal(signal.SIGCONT)
        _, stderr = process.communicate(timeout=patience(60))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    session = _session(repo)
    assert session is not None and session["status"] == "interrupted"
    recorded = _recorded(repo)
    assert 2 * BATCH <= recorded < _MANY  # the batch under way when it was heard, at most
    assert f"of {_MANY} task(s) not done" in stderr
    after = council(["status", str(config)], tmp_path, timeout=60)
    assert after.returncode == 0, after.stderr
    assert f"{_MANY - recorded} of them not recorded yet (queued)" in after.stdout
    # Every task of the config listed, the ones the stop left unrecorded as queued.
    listed = council(["status", str(config), "--json"], tmp_path, timeout=60)
    assert listed.returncode == 0, listed.stderr
    tasks = json.loads(listed.stdout)["tasks"]
    assert len(tasks) == _MANY and len({t["task_id"] for t in tasks}) == _MANY
    assert sum(t["status"] == "queued" for t in tasks) >= _MANY - recorded


async def test_a_task_another_session_took_is_never_taken_back(tmp_path: Path) -> None:
    # Task b's record is found in another session while the run goes on (a later run took it
    # over): the run stops naming it, and b's record stays the other session's. Before, the
    # run wrote a fresh record over it ("its record was missing"), and each run undid the other.
    config = run_config(
        new_repo(tmp_path),
        [{"id": "a", "prompt": "p"}, {"id": "b", "prompt": "p", "depends_on": ["a"]}],
        **_CALM,
    )
    probe = Probe()

    async def take_b_over(run: TaskRun, call: int) -> WorkflowResult:
        await run.store.update_task_state("b", {"session_id": "s-later"})
        return await probe.default(run, call)

    probe.behave["a"] = take_b_over
    async with Council(config, workflow=probe) as council:
        with pytest.raises(BaseException) as raised:  # from the run's task group
            await council.run()
    errors = raised.value.exceptions if isinstance(raised.value, BaseExceptionGroup) else []
    error = errors[0] if len(errors) == 1 else raised.value
    assert isinstance(error, StateError), repr(raised.value)
    assert "its tasks b (session s-later) are recorded in another session now" in str(error)
    store = FileStateStore(config.state_dir)
    b = await store.get_task_state("b")
    assert b is not None and b.session_id == "s-later"
    assert probe.calls["b"] == 0
