"""Retries driven by the outcome: backoff then give up, no retry for auth, parking on a rate
limit with fallback adapters meanwhile, a stale claim swept and requeued, and a heartbeat
that races the attempt's own release taking nothing for a lost claim."""

from __future__ import annotations

import itertools
import time
from collections.abc import Coroutine
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest

from orchestrator.config.sections import RetryConfig
from orchestrator.council import Council
from orchestrator.errors import StaleClaim, StoreUnavailable
from orchestrator.events import Event
from orchestrator.models import Claim, ClaimStatus, TaskState, TaskStatus, utcnow
from orchestrator.retry import GiveUp, Retry, RetryPolicy
from orchestrator.run import stores as stores_module
from orchestrator.scheduler.attempts.attempt import MAX_RECHECKS
from orchestrator.state import FileStateStore
from orchestrator.workflow.task_run import TaskRun, WorkflowResult, WorkflowStatus
from orchestrator.worktrees.tamper.guard import RECHECKED
from tests.support.scheduler_helpers import Probe, failure, merged_tasks, new_repo, run_config
from tests.support.timing import patience


def test_backoff_grows_with_jitter_and_stays_under_the_cap() -> None:
    policy = RetryPolicy(RetryConfig(backoff_initial=1, backoff_max=8, multiplier=2, jitter=True))
    for attempt, exponential in [(1, 1), (2, 2), (3, 4), (4, 8), (9, 8)]:
        delays = [policy.next_delay(attempt) for _ in range(50)]
        assert all(exponential / 2 <= d <= exponential for d in delays)
        assert len(set(delays)) > 1  # jittered
    exact = RetryPolicy(RetryConfig(backoff_initial=1, backoff_max=8, jitter=False))
    assert [exact.next_delay(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 8, 8]


def test_decisions_follow_the_outcome() -> None:
    policy = RetryPolicy(RetryConfig(max_retries=2, backoff_initial=1, jitter=False))
    flaky = failure("exit code 1", retryable=True)
    assert policy.decide(flaky, 1) == Retry(1)
    assert policy.decide(flaky, 2) == Retry(2)
    assert policy.decide(flaky, 3) == GiveUp("gave up after 3 attempts; last error: exit code 1")
    auth = failure("Invalid API key", retryable=True, kind="auth_required")
    assert policy.decide(auth, 1) == GiveUp("Invalid API key")


async def test_a_retryable_failure_backs_off_then_fails_with_the_last_error(
    tmp_path: Path,
) -> None:
    repo = new_repo(tmp_path)

    async def flaky(run: TaskRun, call: int) -> WorkflowResult:
        return failure(f"exit code 1 (call {call})", retryable=True)

    probe = Probe(behave={"t": flaky})
    config = run_config(repo, [{"id": "t", "prompt": "p"}])
    async with Council(config, workflow=probe) as council:
        report = await council.run()

    task = report.task("t")
    assert task.status == TaskStatus.FAILED and task.attempts == 3  # max_retries 2
    assert task.error == "gave up after 3 attempts; last error: exit code 1 (call 3)"
    starts = [s.at for s in probe.starts]
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert gaps[0] >= 0.025 and gaps[1] >= 0.05  # at least half of 0.05 s, then of 0.1 s
    assert report.exit_code == 1


async def test_rechecks_are_not_failed_attempts_but_are_bounded(tmp_path: Path) -> None:
    # The tamper check could not tell which of the sessions side by side changed something:
    # each is sent round again (``rechecked``), which max_retries 0 does not stop; a task
    # rechecked every time still ends, once its rechecks are spent and its retries too.
    repo = new_repo(tmp_path)

    async def beside_a_culprit(run: TaskRun, call: int) -> WorkflowResult:
        result = failure(f"rechecked, to run again (call {call})", retryable=True)
        result.outcome_kind = RECHECKED
        return result

    async def once(run: TaskRun, call: int) -> WorkflowResult:
        if call == 1:
            return await beside_a_culprit(run, call)
        return WorkflowResult(WorkflowStatus.FAILED, message="done failing", retryable=False)

    probe = Probe(behave={"always": beside_a_culprit, "once": once})
    tasks = [{"id": "always", "prompt": "p"}, {"id": "once", "prompt": "p"}]
    config = run_config(repo, tasks, retry={"max_retries": 0, "backoff_initial": 0.01})
    async with Council(config, workflow=probe) as council:
        report = await council.run()

    assert probe.calls["once"] == 2  # rechecked once, though max_retries is 0
    assert probe.calls["always"] == MAX_RECHECKS + 1
    task = report.task("always")
    assert task.status == TaskStatus.FAILED
    assert (
        task.error
        == f"gave up after 1 attempt; last error: rechecked, to run again (call {MAX_RECHECKS + 1})"
    )


async def test_a_build_that_changed_nothing_is_retried_once_told_why_then_ends(
    tmp_path: Path,
) -> None:
    # Before: retried max_retries times with back-off, the same prompt each time.
    repo = new_repo(tmp_path)
    notes: list[str | None] = []

    async def empty(run: TaskRun, call: int) -> WorkflowResult:
        notes.append(run.note)
        return failure("the build changed no files", retryable=True, kind="no_changes")

    async def then_works(run: TaskRun, call: int) -> WorkflowResult:
        notes.append(run.note)
        if call == 1:
            return failure("the build changed no files", retryable=True, kind="no_changes")
        return await probe.default(run, call)

    probe = Probe(behave={"empty": empty, "second": then_works})
    tasks = [{"id": "empty", "prompt": "p"}, {"id": "second", "prompt": "p"}]
    config = run_config(repo, tasks, retry={"max_retries": 4, "backoff_initial": 0.01})
    async with Council(config, workflow=probe) as council:
        report = await council.run()

    assert probe.calls["empty"] == 2 and probe.calls["second"] == 2
    assert sorted(notes, key=str) == sorted(
        [None, "the build changed no files", None, "the build changed no files"], key=str
    )
    failed = report.task("empty")
    assert failed.status == TaskStatus.FAILED and failed.error is not None
    assert failed.error.startswith("the build changed nothing, again after being told so")
    assert report.task("second").status == TaskStatus.DONE


async def test_an_auth_failure_is_not_retried(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)

    async def logged_out(run: TaskRun, call: int) -> WorkflowResult:
        return failure("Invalid API key · Please run /login", retryable=False, kind="auth_required")

    probe = Probe(behave={"t": logged_out})
    async with Council(run_config(repo, [{"id": "t", "prompt": "p"}]), workflow=probe) as c:
        report = await c.run()

    assert probe.calls["t"] == 1
    assert report.task("t").error == "Invalid API key · Please run /login"


async def test_a_rate_limit_parks_the_adapter_and_others_use_the_fallback(
    tmp_path: Path,
) -> None:
    repo = new_repo(tmp_path)
    tasks: list[dict[str, Any]] = [
        {"id": "limited", "prompt": "p", "priority": 5},
        {"id": "other", "prompt": "p"},
    ]
    adapters = {"alpha": {"type": "scripted", "fallback": ["beta"]}, "beta": {"type": "scripted"}}
    config = run_config(repo, tasks, adapters=adapters, capacity={"sessions": 1})
    reset: list[float] = []

    async def hits_the_limit(run: TaskRun, call: int) -> WorkflowResult:
        if call == 1:
            # Long enough that a loaded machine still dispatches "other" inside the park (the
            # order asserted below), scaled with the machine's load (``timing.patience``).
            park = patience(2.0)
            reset.append(time.monotonic() + park)
            return WorkflowResult(
                WorkflowStatus.PARKED,
                phase="build",
                message="usage limit reached",
                outcome_kind="rate_limited",
                retry_at=utcnow() + timedelta(seconds=park),
            )
        return await probe.default(run, call)

    probe = Probe(behave={"limited": hits_the_limit}, pause=0.05)
    events: list[Event] = []
    async with Council(config, workflow=probe) as council:
        council.subscribe(events.append)
        report = await council.run()

    assert report.totals.done == 2
    assert [(s.task_id, s.adapter) for s in probe.starts] == [
        ("limited", "alpha"),
        ("other", "beta"),  # alpha was parked: the fallback took it
        ("limited", "alpha"),  # resumed on its own adapter, after the reset
    ]
    assert probe.started("limited")[1].at >= reset[0] - 0.01
    parked = [e for e in events if e.type == "adapter.parked"]
    assert [e.data["adapter"] for e in parked] == ["alpha"]
    assert report.task("limited").attempts == 2 and report.task("limited").error is None


class _LongHistory(FileStateStore):
    """A real store that keeps every version of a record: the default keeps the last 10, which
    the heartbeat's renewals of a run on a slow machine push the swept version out of."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "history_limit": 10_000})


async def test_a_stale_claim_is_swept_and_the_task_requeued(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stores_module, "FileStateStore", _LongHistory)
    repo = new_repo(tmp_path)
    config = run_config(
        repo,
        [{"id": "t", "prompt": "p"}],
        scheduler={"tick": 0.02, "heartbeat_interval": 0.1, "stale_threshold": 1.5},
    )
    probe = Probe()
    events: list[Event] = []
    async with Council(config, workflow=probe) as council:
        council.subscribe(events.append)
        scheduler = council.scheduler
        await scheduler.start()
        store = scheduler.services.store
        # An orchestrator on another machine took the task and then went silent.
        dead = await store.acquire_claim("t", "elsewhere:4242:gone", 0.2, {"status": "running"})
        assert dead is not None
        report = await council.run()
        history = await store.task_history("t")

    assert report.task("t").status == TaskStatus.DONE
    assert probe.calls["t"] == 1
    swept = [e for e in events if e.type == "task.swept"]
    assert swept and swept[0].data["holder"] == "elsewhere:4242:gone"
    expired = [h for h in history if h.claim is not None and h.claim.token == dead.token]
    assert any(h.claim is not None and h.claim.status == ClaimStatus.EXPIRED for h in expired)


class _RenewDuringRelease(FileStateStore):
    """A real store that makes a heartbeat's renewal fail while the attempt is releasing its
    claim: the release waits for the next renewal to start, writes itself, lets that renewal
    run (StaleClaim), and only then returns to the attempt. Renewals before the release run
    as usual, so the claim is never left unrenewed long enough for the attempt to fence
    itself, however slow the machine: each step waits on the other's event, not the clock."""

    raced: ClassVar[list[str]] = []  # the renewals that ran into the release and were refused

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.entered, self.written = anyio.Event(), anyio.Event()
        self.renew_started, self.renew_failed = anyio.Event(), anyio.Event()

    async def release_claim(self, *args: Any, **kwargs: Any) -> TaskState:
        return await self._racing(super().release_claim(*args, **kwargs))  # type: ignore[no-any-return]

    async def release_claim_then_delete_made(self, *args: Any, **kwargs: Any) -> Any:
        # A landing's release, written first in its worktree removal's call.
        return await self._racing(super().release_claim_then_delete_made(*args, **kwargs))

    async def _racing(self, release: Coroutine[Any, Any, Any]) -> Any:
        self.entered.set()
        try:
            with anyio.fail_after(patience(30)):  # the tick renews every heartbeat_interval
                await self.renew_started.wait()
        except BaseException:
            release.close()
            raise
        done = await release
        self.written.set()
        with anyio.fail_after(patience(30)):
            await self.renew_failed.wait()
        return done

    async def renew_claim(self, task_id: str, token: int, lease_seconds: float) -> Claim:
        if not self.entered.is_set() or self.renew_started.is_set():
            return await super().renew_claim(task_id, token, lease_seconds)
        self.renew_started.set()
        await self.written.wait()
        try:
            return await super().renew_claim(task_id, token, lease_seconds)
        except StaleClaim:
            self.raced.append(task_id)
            raise
        finally:
            self.renew_failed.set()


async def test_a_renewal_racing_the_attempts_own_release_is_no_lost_claim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stores_module, "FileStateStore", _RenewDuringRelease)
    monkeypatch.setattr(_RenewDuringRelease, "raced", [])
    repo = new_repo(tmp_path)
    config = run_config(repo, [{"id": "t1", "prompt": "p"}])
    events: list[Event] = []
    async with Council(config, workflow=Probe(pause=0.3)) as council:
        council.subscribe(events.append)
        report = await council.run()
    assert _RenewDuringRelease.raced == ["t1"]  # the race happened: the renewal was refused
    assert report.task("t1").status == TaskStatus.DONE
    stored = Path(config.state_dir).parent / "events.jsonl"
    assert b"claim_lost" not in stored.read_bytes()
    assert "task.claim_lost" not in {event.type for event in events}


class _SlowToSettle(FileStateStore):
    """A real store that takes a second over the first read of a task after its CLI reported
    a rate limit (``slow_next``): the read that settling the attempt starts with."""

    slow_next: ClassVar[set[str]] = set()

    async def get_task_state(self, task_id: str) -> TaskState | None:
        if task_id in self.slow_next:
            self.slow_next.discard(task_id)
            await anyio.sleep(1.0)
        return await super().get_task_state(task_id)


async def test_a_slot_is_not_free_before_its_attempt_is_settled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Freed as soon as the CLI was done, the only slot went to "other" while the park of
    # "limited" was still being written, and "other" started on the adapter being parked.
    monkeypatch.setattr(stores_module, "FileStateStore", _SlowToSettle)
    repo = new_repo(tmp_path)
    tasks: list[dict[str, Any]] = [
        {"id": "limited", "prompt": "p", "priority": 5},
        {"id": "other", "prompt": "p"},
    ]
    adapters = {"alpha": {"type": "scripted", "fallback": ["beta"]}, "beta": {"type": "scripted"}}
    config = run_config(repo, tasks, adapters=adapters, capacity={"sessions": 1})

    async def hits_the_limit(run: TaskRun, call: int) -> WorkflowResult:
        if call == 1:
            _SlowToSettle.slow_next.add("limited")
            return WorkflowResult(
                WorkflowStatus.PARKED,
                phase="build",
                message="usage limit reached",
                outcome_kind="rate_limited",
                retry_at=utcnow() + timedelta(seconds=patience(3.0)),  # "other" starts inside
            )
        return await probe.default(run, call)

    probe = Probe(behave={"limited": hits_the_limit}, pause=0.05)
    async with Council(config, workflow=probe) as council:
        report = await council.run()

    assert report.totals.done == 2
    assert [(s.task_id, s.adapter) for s in probe.starts][:2] == [
        ("limited", "alpha"),
        ("other", "beta"),
    ]


class _UnreachableMidMerge(FileStateStore):
    """A real store that cannot be reached for the renewals of the claim that was live when
    the test cut it (``cut``), and holds that claim's release until the sweep has taken it:
    a heartbeat's renewal in flight as the held loop resumes can no longer win the race
    against the fence and the sweep, nor can the merge's release write the task done under
    the lapsed lease first. Each step waits on the other's event, not the clock."""

    cut: ClassVar[list[bool]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fenced_token = 0
        self.swept = anyio.Event()

    async def renew_claim(self, task_id: str, token: int, lease_seconds: float) -> Claim:
        if self.cut and self.fenced_token in (0, token):
            self.fenced_token = token
            raise StoreUnavailable("the test cut the store off for this claim")
        return await super().renew_claim(task_id, token, lease_seconds)

    async def sweep_expired_claims(self, now: datetime | None = None) -> list[Claim]:
        swept = await super().sweep_expired_claims(now)
        if self.cut and swept:
            self.swept.set()
        return swept

    async def release_claim(self, *args: Any, **kwargs: Any) -> TaskState:
        await self._after_the_sweep()
        return await super().release_claim(*args, **kwargs)

    async def release_claim_then_delete_made(self, *args: Any, **kwargs: Any) -> Any:
        await self._after_the_sweep()
        return await super().release_claim_then_delete_made(*args, **kwargs)

    async def _after_the_sweep(self) -> None:
        if self.cut and not self.swept.is_set():
            with anyio.fail_after(patience(30)):
                await self.swept.wait()


async def test_a_lease_lapsed_while_its_merge_went_on_ends_done_not_no_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The event loop held up past the lease while a merge is under way (a machine too busy to
    renew it): the sweep gives the task back, the merge still lands. Its retry must find the
    landing on the base and end the task done, not build again, find its own work already
    there and fail it "no changes" (it did, under load).

    The claim's renewals are refused from the hold on (``_UnreachableMidMerge``): a heartbeat
    renewal that reached the store as the loop resumed renewed the lapsed claim before the
    sweep looked (1 run in 5), and the task then ended done on its first claim, the path this
    test is not about."""
    monkeypatch.setattr(stores_module, "FileStateStore", _UnreachableMidMerge)
    monkeypatch.setattr(_UnreachableMidMerge, "cut", [])
    repo = new_repo(tmp_path)
    config = run_config(
        repo,
        [{"id": "other", "prompt": "WRITE other.txt fine", "adapters": ["alpha"]}],
        scheduler={"tick": 0.02, "heartbeat_interval": 0.1, "stale_threshold": 0.3},
    )
    events: list[Event] = []

    def hold_the_loop(event: Event) -> None:
        events.append(event)
        if event.type == "merge.started" and not _UnreachableMidMerge.cut:
            _UnreachableMidMerge.cut.append(True)
            time.sleep(1.0)  # synchronously: nothing renews the lease meanwhile

    async with Council(config) as council:
        council.subscribe(hold_the_loop)
        report = await council.run()

    kinds = [event.type for event in events]
    assert "task.swept" in kinds  # the lease did lapse mid-merge
    assert report.exit_code == 0, report.model_dump_json(indent=2)
    assert report.task("other").status == TaskStatus.DONE
    assert "task.already_merged" in kinds and "phase.failed" not in kinds
    assert merged_tasks(repo) == ["other"]  # landed once


async def test_an_attempt_released_while_a_pause_renews_others_is_not_lost() -> None:
    # After a pause the reconciler renews every running claim, one after another; an attempt
    # that released its claim (token 0, ended) while an earlier one was renewed was then
    # "renewed" with token 0, refused, and moved ended -> lost: IllegalMove, the run exit 1
    # (seen once in test_start_many's Ctrl-C after SIGSTOP). Nothing of it is renewed now.
    from types import SimpleNamespace

    from orchestrator.config.task import TaskConfig
    from orchestrator.scheduler.attempts.attempt import Attempt
    from orchestrator.scheduler.attempts.lifecycle import Stage
    from orchestrator.scheduler.reconciler import Reconciler

    asked: list[int] = []

    async def renew_claim(key: str, token: int, stale: object) -> None:
        asked.append(token)
        raise StaleClaim(f"{key}: no claim with token {token}")

    ended = Attempt(
        task=TaskConfig(id="t1", prompt="p"), adapter="a", phase=None, seq=0, files=frozenset()
    )
    ended.token = 7
    ended.move(Stage.RELEASING)
    ended.token = 0
    ended.move(Stage.ENDED)
    config = SimpleNamespace(scheduler=SimpleNamespace(stale_threshold=timedelta(seconds=5)))
    me: Any = SimpleNamespace(
        _run=SimpleNamespace(
            services=SimpleNamespace(store=SimpleNamespace(renew_claim=renew_claim), config=config)
        )
    )
    await Reconciler._renew(me, ended, time.monotonic())
    assert ended.stage is Stage.ENDED and asked == []
