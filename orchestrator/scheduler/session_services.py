"""A run's ``services:`` (issue 50): each session's own, started by the run
(``orchestrator.services``).

``SessionServicesPart`` is the scheduler's part (``parts.RunPart``) over one
``SessionServices`` per attempt, listed only when the run config names services:

- ``phase_starting(attempt, phase)``: the attempt's session gets its network namespace on its
  first phase (under the sandbox with an open network, with its own way out to the public
  network: ``SessionNet.open``'s uplink), then the services ``phase`` needs are started
  (those it does not need stopped); the session's side goes to the phase's CLI and verify commands
  (``sandbox.commands.SessionSide``: the services' ``COUNCIL_SERVICE_*`` variables, and the
  session's network to run the commands in). A service that is not ready raises
  ``ServiceFailed``, which the workflow makes its phase's failure (``service_failed``);
- ``ended(attempt)``: however the attempt ended (landed, failed, cancelled), its services are
  stopped and its namespace ends;
- ``left()``: the run's loop is over: whatever is still open is closed (shielded).

Each service ready, not ready and stopped is an event (``service.ready``, ``service.failed``,
``service.stopped``: ``orchestrator.events.services``), which the run's console and event log
show. Each change of a service's state (starting, ready, failed, stopped) is also written to
the task's keyed record ``services/<task>`` (``services.records``: name, state, port, and a
failure's reason masked and bounded, never its log), which ``council status``, its ``--json``
and the web page read through the run's report; ``notes()`` gives the live board the same
word (``web ready, db failed``) from memory. A record that cannot be written is said in the
log and never fails the attempt.

A kill of the orchestrator needs nothing here: each service's PID namespace and the
namespace's holder end with it (``services.service``, ``services.holder``).

The services run code the CLI wrote (a dev server, the repository's scripts), so they run as
the session's verify commands do (``workflow.checks.build.session_place``): in its CLI's
sandbox where there is one, the user's HOME hidden, with the allow-listed environment of every
non-CLI child and the session's private HOME for commands (HOME, the XDG directories,
TMPDIR), each one's log ``<log dir>/services/<session>/service-<name>.log``, its tail masked
before any error or event quotes it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import anyio.to_thread

from orchestrator.errors import VersionConflict
from orchestrator.events.base import Event
from orchestrator.events.services import ServiceNotReady, ServiceReady, ServiceStopped
from orchestrator.sandbox.commands import CommandPlace, SessionSide, service_env, shown
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.context import RunContext
from orchestrator.scheduler.parts import RunPart
from orchestrator.services.records import (
    MAX_SERVICES,
    NAMESPACE,
    ServicesRecord,
    ServiceState,
    bounded_why,
    newer,
    note,
)
from orchestrator.services.service import ServiceFailed
from orchestrator.services.session import SessionServices
from orchestrator.workflow.checks.build import session_place

__all__ = ["SessionServicesPart"]

log = logging.getLogger(__name__)
_TRIES = 5  # compare-and-set attempts at a task's services record


class SessionServicesPart(RunPart):
    """The run's services, one set per attempt's session (module doc)."""

    def __init__(self, run: RunContext) -> None:
        self._run = run
        self.sessions: dict[Attempt, SessionServices] = {}

    async def phase_starting(self, attempt: Attempt, phase: str) -> SessionSide | None:
        services = self.sessions.get(attempt)
        if services is None:
            services = await self._opened(attempt)
        was = dict(services.states)
        try:
            await services.before(phase)
        except ServiceFailed as exc:
            await self._said(attempt, services, was, phase)
            log_file = str(services.log_of(exc.name))
            await self._emit(
                ServiceNotReady(
                    task_id=attempt.task.id,
                    session_id=_session_id(attempt),
                    service=exc.name,
                    phase=phase,
                    why=exc.why,
                    log=log_file,
                )
            )
            raise
        await self._said(attempt, services, was, phase)
        join = services.join if services.net is not None else None
        return SessionSide(env=services.variables(), join=join, resolv=services.resolv)

    async def ended(self, attempt: Attempt) -> None:
        services = self.sessions.pop(attempt, None)
        if services is not None:
            was = dict(services.states)
            await services.close()
            await self._said(attempt, services, was, None)

    async def _said(
        self, attempt: Attempt, services: SessionServices, was: dict[str, str], phase: str | None
    ) -> None:
        """The events of what changed since ``was``: each service now ready, each stopped."""
        session = _session_id(attempt)
        for name, state in services.states.items():
            if state == "ready" and was.get(name) != "ready" and phase is not None:
                log_file = str(services.log_of(name))
                ready = ServiceReady(
                    task_id=attempt.task.id,
                    session_id=session,
                    service=name,
                    phase=phase,
                    log=log_file,
                )
                await self._emit(ready)
            elif state == "stopped" and was.get(name) == "ready":
                stopped = ServiceStopped(task_id=attempt.task.id, session_id=session, service=name)
                await self._emit(stopped)

    async def _emit(self, event: Event) -> None:
        try:
            await self._run.events.emit(event)
        except Exception as exc:  # what is said never fails the attempt
            log.warning("a service event was not recorded: %s", exc)

    async def left(self) -> None:
        with anyio.CancelScope(shield=True):
            while self.sessions:
                _, services = self.sessions.popitem()
                try:
                    await services.close()
                except Exception as exc:  # one set's trouble never keeps the others open
                    log.warning("stopping a session's services failed: %s", exc)

    def states(self) -> dict[str, dict[str, str]]:
        """Per task id, each of its session's services and its state."""
        return {a.task.id: dict(s.states) for a, s in self.sessions.items()}

    def notes(self) -> Mapping[str, str]:
        """Per task id in flight, its services' word for the board: ``services: web ready``."""
        return {
            a.task.id: "services: " + note({name: s.states[name] for name in s.touched})
            for a, s in self.sessions.items()
            if s.touched
        }

    async def _record(self, attempt: Attempt, services: SessionServices) -> None:
        """Write the task's ``services`` record as ``services`` are now (module doc)."""
        if self._run.killed or self._run.ended_elsewhere:
            return  # nothing more is written by this run
        record = ServicesRecord(
            session=self._run.session_id or "",
            worktree=_session_id(attempt),
            attempt=attempt.number,
            services=[_state(services, name) for name in services.touched[:MAX_SERVICES]],
        )
        try:
            await self._written(attempt.task.id, record)
        except Exception as exc:  # what is shown never fails the attempt
            log.warning("the services of task %s were not recorded: %s", attempt.task.id, exc)

    async def _written(self, task_id: str, record: ServicesRecord) -> None:
        """``record`` written by compare-and-set, unless the task's record is of a later
        attempt (``services.records.newer``: another workstation took the task over)."""
        store = self._run.services.store
        for _ in range(_TRIES):
            current = await store.get_record(NAMESPACE, task_id)
            if newer(current, record):
                return
            version = current.version if current is not None else 0
            try:
                await store.put_record(
                    NAMESPACE, task_id, record.model_dump(mode="json"), expected_version=version
                )
                return
            except VersionConflict:
                continue  # written meanwhile: looked at again
        log.warning("the services of task %s were not recorded: written meanwhile", task_id)

    async def _opened(self, attempt: Attempt) -> SessionServices:
        session = attempt.session
        assert session is not None  # a phase starts in the attempt's worktree
        run = self._run.services
        place = await session_place(run.config, run.worktrees, session)
        env = await anyio.to_thread.run_sync(service_env, place, {})
        services = SessionServices(
            run.config.services,
            workdir=session.path,
            env=env,
            log_dir=run.log_dir / "services" / session.session_id,
            place=place,
            uplink=_uplink(place),
        )

        async def changed() -> None:
            await self._record(attempt, services)

        services.on_change = changed
        self.sessions[attempt] = services
        await services.open()
        return services


def _uplink(place: CommandPlace) -> str | None:
    """The network helper that gives the session's namespace the public network: under the
    sandbox with an open network setting (``model`` and ``none`` give it none), as the
    session's CLI would get on its own."""
    if not place.confined or place.sandbox is None:
        return None
    settings = place.sandbox.settings
    if not settings.network or settings.only_model:
        return None
    return settings.uplink


def _session_id(attempt: Attempt) -> str:
    return attempt.session.session_id if attempt.session is not None else ""


def _state(services: SessionServices, name: str) -> ServiceState:
    """``name``'s state as recorded: a failure's reason masked and bounded, never its log."""
    state = services.states[name]
    why = services.reasons.get(name) if state == "failed" else None
    return ServiceState.model_validate(
        {
            "name": name,
            "state": state,
            "port": services.configs[name].port,
            "why": bounded_why(shown(why)) if why else None,
        }
    )
