"""The scheduler's view of its session's task states, kept current without reading them all.

Every tick needs the state of every task (to order the queue, check dependencies and see
whether the run is over), but reading all of them from the store each tick costs O(tasks) per
tick, and a run has O(tasks) ticks: the orchestrator's time per task would grow with the size
of the run. ``TaskView`` keeps the states in memory instead and re-reads only what changed:

- every write to a task record made through this process's store announces itself
  (``state.updated`` / ``state.recovered`` events, to which the view subscribes): that task is
  marked dirty and read again on the next ``current()`` when the write touched a field the
  queue reads (status, metadata, priority, ...; not a claim renewal or a phase record);
- a task the scheduler learns about some other way (a cancel request another process made)
  is marked with ``touch``;
- a write of this run whose result the writer holds (a claim released, a status written) is
  handed over (``wrote``): when it is the version its own announcement named, and nothing
  marked the task since, that is the read (no store call);
- a store shared by several processes (PostgreSQL) also announces other processes' writes
  (``state.updated`` marked ``remote``): a task of the session written elsewhere is marked
  dirty the same way, and ``on_remote`` is called so the scheduler looks at once (a task whose
  dependency another workstation just merged starts within milliseconds, not at the next full
  read); ``state.resync`` (such announcements may have been lost, a reconnection) makes the
  next ``current()`` a full read;
- other writes announce nothing here (another process on a file store; a lost
  announcement), so the whole session is looked at again every ``refresh_every`` seconds
  (longer for a big session: about 50 records a second at most, so this costs the same per
  task at any size), and whenever the caller asks (``current(full=True)``: the scheduler
  does before it concludes that the run is over). That look reads only the records not held
  as they are now (``StateStore.list_tasks_changed``: the file store stats the others, and
  PostgreSQL compares their versions in its query), and is as exact as reading them all.

What the view read again since it was last asked is kept for those that keep something
built from the states (the live board, the dispatch order): ``take_changes()``, the ids of
the records read again or gone, or None after the first read (any of them may have changed).

The view never decides anything on its own: a stale entry can at worst make the scheduler try
a dispatch that the claim (read fresh, compare-and-set) then refuses, or wait until the next
full read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from orchestrator.events import Event, EventType, StateUpdated
from orchestrator.models import TERMINAL_TASK_STATUSES, TaskState
from orchestrator.state.protocol import StateStore

__all__ = ["REFRESH_EVERY", "TaskView"]

REFRESH_EVERY = 5.0  # seconds between full reads (other processes' writes show up by then)
_SECONDS_PER_TASK = 0.02  # ... and at least this much per task between them
_TASK_EVENTS = frozenset({EventType.STATE_UPDATED, EventType.STATE_RECOVERED})
# What the scheduler's queue reads of a task (``scheduler.rules.queue``, ``Scheduler._dispatch``).
# Phase records matter only when an attempt starts, and every attempt ends with a status
# write, which brings them along.
_QUEUE_FIELDS = frozenset({"status", "metadata", "priority", "created_at", "session_id"})


# What an ended task no longer needs in the view: its phase records and its released claim,
# about two thirds of a task's memory. Nothing the scheduler does with an ended task reads
# them (the board, dependencies, relandings, the end of the run); a task that leaves its end
# (requeued, resumed) is written, so it is read again whole. The light copy takes over the
# record's own set of the fields it had (the record read is dropped): a copy of that set,
# as ``model_copy`` makes, was over a kilobyte a task for as long as the run went on.
def _kept(state: TaskState) -> TaskState:
    """``state`` as the view keeps it: whole while the task is under way, light once ended,
    so the memory of a long run does not grow with the tasks it has finished."""
    if state.status in TERMINAL_TASK_STATUSES and (state.phases or state.claim is not None):
        light = {**state.__dict__, "phases": {}, "claim": None}
        return TaskState.model_construct(state.model_fields_set, **light)
    return state


class TaskView:
    def __init__(
        self,
        store: StateStore,
        session_id: str,
        refresh_every: float = REFRESH_EVERY,
        *,
        on_remote: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.session_id = session_id
        self.refresh_every = refresh_every
        self._on_remote = on_remote
        self._states: dict[str, TaskState] | None = None
        self._dirty: set[str] = set()
        self._read_at = 0.0
        self._resync = False
        self._changed: set[str] | None = None  # read again since ``take_changes`` (None: all)
        # Task -> the version this process's last write of it announced, while that write's
        # result may still come (``wrote``) in place of a read.
        self._announced: dict[str, int] = {}

    def on_event(self, event: Event) -> None:
        """Store subscriber: a task written (here or, announced as remote, elsewhere) is read
        again next time, unless the write changed only what the queue never reads (a claim
        renewal, phase records)."""
        if event.type == EventType.STATE_RESYNC:
            self._resync = True
            self._remote_change()
            return
        if event.type not in _TASK_EVENTS:
            return
        data = _said(event)
        if data.get("kind") != "tasks":
            return
        remote = data.get("remote") is True
        key = data.get("key")
        fields = data.get("fields")
        if not isinstance(key, str):
            return
        if remote and self._states is not None and key not in self._states:
            return  # another session's task (the database is shared by every run)
        renewal_or_phase = (
            event.type == EventType.STATE_UPDATED
            and isinstance(fields, list)
            and _QUEUE_FIELDS.isdisjoint(fields)
        )
        if not renewal_or_phase:
            self._dirty.add(key)
            version = data.get("version")
            local = event.type == EventType.STATE_UPDATED and not remote
            if local and isinstance(version, int):
                self._announced[key] = version  # ``wrote`` may bring this version along
            else:
                self._announced.pop(key, None)  # read again, whatever a caller holds
            if remote:
                self._remote_change()

    def wrote(self, state: TaskState) -> None:
        """A write of this process left ``state``: taken as the read of it the next
        ``current()`` would make, when it is the version last announced for the task (its
        write's own ``state.updated``, which marked it) and nothing else marked it since."""
        key = state.task_id
        if self._states is None or self._announced.get(key) != state.version:
            return
        del self._announced[key]
        self._dirty.discard(key)
        if self._changed is not None:
            self._changed.add(key)
        if state.session_id == self.session_id:
            self._states[key] = _kept(state)
        else:
            self._states.pop(key, None)

    def _remote_change(self) -> None:
        if self._on_remote is not None:
            self._on_remote()

    def touch(self, task_id: str) -> None:
        """Read ``task_id`` again next time (it may have changed behind our back)."""
        self._dirty.add(task_id)
        self._announced.pop(task_id, None)

    def take_changes(self) -> set[str] | None:
        """The ids of the records read again since the last call; None: everything was (a
        full read, or the first)."""
        changed, self._changed = self._changed, set()
        return changed

    async def current(self, *, full: bool = False) -> dict[str, TaskState]:
        """The session's task states by id (a new dict; the states are shared, never mutate
        them)."""
        now = time.monotonic()
        known = len(self._states) if self._states is not None else 0
        every = max(self.refresh_every, known * _SECONDS_PER_TASK)
        if full or self._resync or self._states is None or now - self._read_at >= every:
            self._dirty = set()  # before the read: a write landing during it marks again
            self._announced.clear()
            self._resync = False
            # Only what is not held as it is now is read (and parsed): everything the first
            # time, which the store then knows as the view holds it.
            held = self._states if self._states is not None else {}
            changes = await self.store.list_tasks_changed(self.session_id, held)
            changed = changes.changed
            self._states = {
                key: _kept(changed[key]) if key in changed else held[key] for key in changes.order
            }
            if not held:
                self._changed = None
            elif self._changed is not None:
                self._changed.update(changed, changes.gone(held))
            self._read_at = now
        elif self._dirty:
            dirty, self._dirty = sorted(self._dirty), set()
            for task_id in dirty:
                self._announced.pop(task_id, None)
            if self._changed is not None:
                self._changed.update(dirty)
            read = {s.task_id: s for s in await self.store.get_task_states(dirty)}  # one trip
            for task_id in dirty:
                state = read.get(task_id)
                if state is not None and state.session_id == self.session_id:
                    self._states[task_id] = _kept(state)
                else:
                    self._states.pop(task_id, None)
        return dict(self._states)


def _said(event: Event) -> Mapping[str, Any]:
    """What ``on_event`` reads of ``event``'s payload. A store's ``StateUpdated`` (a dozen for
    every task) straight from its fields, each a JSON value already and None when not given,
    as ``data`` (a new dict of the whole event's JSON form per access) would miss it; any
    other event through ``data``."""
    if isinstance(event, StateUpdated):
        fields = ("kind", "key", "version", "fields", "remote")
        return {name: getattr(event, name) for name in fields}
    return event.data
