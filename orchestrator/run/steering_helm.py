"""What the issue's commands do to a run (``forge.steering.Helm`` over the scheduler).

- ``/council go on``: the budget that holds the task (the scope its last ``budget.exceeded``
  named; the one budget holding the run when the task's own call did not say it) gets room
  for the held call's forecast (its ``call.held`` says it) and its configured limit once more
  beyond what it had spent when it said so: a run budget of $20 found spent at $20.40, the
  held call forecast at $0.60, becomes $41.00. What one answer lets go is bounded and known
  before it is given (the question names the forecast), and the held call is let start: a
  budget smaller than one call, given only its configured room again, would hold it again
  (or its meter would stop it again) on every answer.
- ``/council raise <usd>``: that budget gets that many dollars more (the run's budget when
  nothing holds the task and the run has one).
- ``/council stop``: the task is cancelled, as ``council cancel`` does (``Scheduler.cancel``).
- ``/council retry``: a task that ended failed, conflict or cancelled is queued again with its
  whole retry allowance, its work kept (``scheduler.retry.request_retry``).
- ``/council rebase``: a task whose pull request is open is built again on the remote's base
  as it is now and pushed to the same pull request (``scheduler.retry.request_rebase``).

A retried or rebased task is taken up by the running scheduler on its next tick. A run that is
not serving (``council run``) ends once its tasks are settled: the answer says that such a run
takes the task up only while it still goes, and `council resume` otherwise.

Both raises go through ``spend.raising``, the write behind ``council budget raise``: the run's
spend gate reads it at its next tick and starts what the budget held.
"""

from __future__ import annotations

from orchestrator.config.budgets import Limit
from orchestrator.errors import CancelError, RecordNotFound, RequeueError
from orchestrator.events.base import Event
from orchestrator.events.kinds import EventType
from orchestrator.forge.issue_tasks import issue_number, task_id_for
from orchestrator.forge.steering import SteeringRefused
from orchestrator.money import dollars
from orchestrator.scheduler.pulls.landing import PULLS
from orchestrator.scheduler.retry import request_rebase, request_retry
from orchestrator.scheduler.scheduler import Scheduler
from orchestrator.spend.raising import budget_scope, in_force, raise_budget, room_again
from orchestrator.task_meta import TaskMeta

__all__ = ["RunHelm"]


class RunHelm:
    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        self._held: dict[str, str] = {}  # task id -> the budget scope key that holds it
        self._spent: dict[str, tuple[float, int]] = {}  # scope key -> (usd, tokens) when said
        self._coming: dict[str, tuple[float, int]] = {}  # task id -> its held call's forecast
        self._pulls: dict[int, str] = {}  # pull request number -> task id

    def hear(self, event: Event) -> None:
        """A run subscriber: which budget holds which task, which pull request is whose."""
        data, task_id = event.data, event.data.get("task_id")
        if not isinstance(task_id, str):
            return
        if event.type == EventType.BUDGET_EXCEEDED and isinstance(data.get("scope"), str):
            key = str(data["scope"])
            self._held[task_id] = key
            usd, tokens = data.get("spent_usd"), data.get("spent_tokens")
            self._spent[key] = (
                float(usd) if isinstance(usd, int | float) else 0.0,
                int(tokens) if isinstance(tokens, int) else 0,
            )
        elif event.type == EventType.CALL_HELD and data.get("kind") == "budget":
            usd, tokens = data.get("forecast_usd"), data.get("forecast_tokens")
            self._coming[task_id] = (
                float(usd) if isinstance(usd, int | float) else 0.0,
                int(tokens) if isinstance(tokens, int) else 0,
            )
        elif event.type == EventType.PULL_OPENED and isinstance(data.get("number"), int):
            self._pulls[int(str(data["number"]))] = task_id

    async def task_of(self, number: int) -> str | None:
        """From the run's tasks, else from the store (a comment read while a resumed run is
        still loading its tasks, a pull request opened before this process started)."""
        scheduler = self._scheduler
        for line in scheduler.board():
            task = scheduler.task(line.task_id)
            if task is not None and issue_number(task) == number:
                return line.task_id
        if number in self._pulls:
            return self._pulls[number]
        store = scheduler.services.store
        if await store.get_task_state(task_id_for(number)) is not None:
            return task_id_for(number)
        for record in await store.list_records(PULLS):
            if record.data.get("number") == number:
                self._pulls[number] = record.key
                return record.key
        return None

    async def go_on(self, task_id: str) -> str:
        key = self._holding(task_id)
        scope = budget_scope(key)
        configured = self._configured(scope)
        if configured is None:
            raise SteeringRefused(f"the run's config has no budget {scope!r} to raise")
        coming_usd, coming_tokens = coming = self._coming.get(task_id, (0.0, 0))
        now = await self._in_force(scope)
        new = room_again(configured, now, self._spent.get(key, (0.0, 0)), coming)
        limit = await self._raise(scope, new, add=False)
        self._release(key)
        room = "its configured limit once more"
        if coming_usd or coming_tokens:
            room = f"the held call's forecast and {room}"
        said = f"{_named(scope)} is now {limit.said()} (room for {room})"
        return f"{said}; held work goes on."

    async def raise_by(self, task_id: str, usd: float) -> str:
        try:
            key = self._holding(task_id)
        except SteeringRefused:
            if self._scheduler.services.config.budgets.run is None:
                raise SteeringRefused("no budget holds this task, and the run has none") from None
            key = "run"
        scope = budget_scope(key)
        limit = await self._raise(scope, {"usd": usd})
        self._release(key)
        return f"{_named(scope)} is now {limit.said()} ({dollars(usd)} more)."

    async def stop(self, task_id: str) -> str:
        try:
            state = await self._scheduler.cancel(task_id)
        except CancelError as exc:
            raise SteeringRefused(str(exc)) from None
        return f"the task is cancelled (it was {state.status}); its work stays on its branch."

    async def retry(self, task_id: str) -> str:
        store = self._scheduler.services.store
        try:
            before = await store.get_task_state(task_id)
            state = await request_retry(store, task_id)
        except (RequeueError, RecordNotFound) as exc:
            raise SteeringRefused(str(exc)) from None
        ended = f"it had ended {before.status}" if before is not None else "it had ended"
        if TaskMeta.read(state.metadata).worktree.session:
            kept = "its next attempt continues in its kept worktree"
        elif state.branch:
            kept = (
                f"its next attempt starts afresh; its earlier work stays on branch {state.branch}"
            )
        else:
            kept = "its next attempt starts afresh"
        said = f"the task is queued again with its whole retry allowance ({ended}); {kept}."
        return said + self._not_serving()

    async def rebase(self, task_id: str) -> str:
        services = self._scheduler.services
        try:
            state = await request_rebase(services, task_id)
        except (RequeueError, RecordNotFound) as exc:
            raise SteeringRefused(str(exc)) from None
        pull = TaskMeta.read(state.metadata).pull.pull
        number = pull.number if pull is not None else None
        said = (
            f"the task is built again on {services.config.base_branch} as the remote has it now "
            f"and pushed to the same pull request #{number}."
        )
        return said + self._not_serving()

    def _not_serving(self) -> str:
        """What a run that is not ``council serve`` does with a task queued again."""
        if self._scheduler.keep_open:
            return ""
        return (
            " This run is not serving (`council serve`): it takes the task up if it is still "
            "going; once it has ended, `council resume` does."
        )

    def _holding(self, task_id: str) -> str:
        """The budget holding the task: its own, or the one budget said spent that covers
        every task (the run's, an adapter's; said once, on the task whose call found it)."""
        key = self._held.get(task_id)
        if key is not None:
            return key
        shared = {held for held in self._held.values() if not held.startswith("task:")}
        if len(shared) == 1:
            return shared.pop()
        raise SteeringRefused("no budget holds this task now: there is nothing to go on with")

    def _configured(self, scope: str) -> Limit | None:
        budgets = self._scheduler.services.config.budgets
        if scope in ("run", "task"):
            found: Limit | None = getattr(budgets, scope)
            return found
        return budgets.adapters.get(scope)

    def _session(self) -> str:
        session_id = self._scheduler.session_id
        if session_id is None:
            raise SteeringRefused("the run has not started yet")
        return session_id

    async def _in_force(self, scope: str) -> Limit:
        services = self._scheduler.services
        found = await in_force(services.store, services.config.budgets, self._session(), scope)
        if found is None:
            raise SteeringRefused(f"the run has no budget {scope!r}")
        return found

    async def _raise(
        self, scope: str, new: dict[str, float | int | None], *, add: bool = True
    ) -> Limit:
        services = self._scheduler.services
        try:
            return await raise_budget(
                services.store, services.config.budgets, self._session(), scope, new, add=add
            )
        except ValueError as exc:
            raise SteeringRefused(str(exc)) from None

    def _release(self, key: str) -> None:
        """Tasks held by ``key`` are held no more (said again if it is spent again)."""
        let_go = {task for task, held in self._held.items() if held == key}
        self._held = {task: held for task, held in self._held.items() if held != key}
        self._coming = {task: room for task, room in self._coming.items() if task not in let_go}
        self._spent.pop(key, None)


def _named(scope: str) -> str:
    return {"run": "the run's budget", "task": "each task's budget"}.get(
        scope, f"adapter {scope}'s budget"
    )
