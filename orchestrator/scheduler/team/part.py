"""Team mode as a part of the run (``scheduler.parts.RunPart``).

Its points: an attempt's git work in a team (``work.TeamWork``: files owned team-wide once the
claim is taken, another workstation's published branch adopted, a fresh base before a fork,
the branch published at each phase's end, the files released at the attempt's end); its
landing through the team's one train (``train.TeamTrain``: landed by whichever workstation
holds the team's merge lock, this one or a teammate); the
commits a CLI pushed onto the team's base outside the queue (``outside_push``); and this
workstation's presence, beaten each tick and left when the run's loop is over
(``presence``).
"""

from __future__ import annotations

from collections.abc import Mapping

from orchestrator.merge.types import MergeResult
from orchestrator.models import TaskState
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.attempts.inflight import InFlight
from orchestrator.scheduler.context import RunContext
from orchestrator.scheduler.parts import RunPart
from orchestrator.scheduler.team.outside_push import pushed_outside
from orchestrator.scheduler.team.presence import Presence
from orchestrator.scheduler.team.train import TeamTrain
from orchestrator.scheduler.team.work import TeamWork
from orchestrator.state.team import Team
from orchestrator.worktrees.models import SessionWorktree

__all__ = ["TeamPart"]


class TeamPart(RunPart):
    def __init__(self, run: RunContext, team: Team, inflight: InFlight) -> None:
        self._run = run
        self._work = TeamWork(run, team)
        self._train = TeamTrain(run, team, self._work, inflight)
        config = run.services.config.scheduler
        self._presence = Presence(
            run.services.store,
            team,
            config.heartbeat_interval / 2,
            stale=config.stale_threshold,
        )
        self._inflight = inflight  # how many attempts this workstation runs now

    async def claimed(self, attempt: Attempt) -> str | None:
        """Own the attempt's declared files across the team, under its claim's token; why the
        task waits when a live attempt elsewhere owns one."""
        attempt.team_token = attempt.token
        taken_by = await self._work.take_files(attempt)
        if taken_by is None:
            return None
        holder = ":".join(taken_by.holder.split(":")[:2])
        return f"{taken_by.path} is owned by task {taken_by.task_id} on {holder}"

    async def adopt(
        self, attempt: Attempt, session_id: str, state: TaskState
    ) -> SessionWorktree | None:
        return await self._work.take_over(attempt, session_id, state)

    async def forking(self, attempt: Attempt) -> None:
        await self._work.fresh_base()

    async def phase_ended(self, attempt: Attempt) -> None:
        await self._work.publish(attempt)

    async def landing(self, attempt: Attempt) -> MergeResult | None:
        return await self._train.land(attempt)

    async def outside(self, attempt: Attempt, tip: str, *, fetch: bool = False) -> str | None:
        return await pushed_outside(self._run, attempt, tip, fetch=fetch)

    async def ended(self, attempt: Attempt) -> None:
        await self._work.release_files(attempt, attempt.team_token)

    async def tick(self, states: Mapping[str, TaskState]) -> None:
        await self._presence.beat(self._run.session_id or "", len(self._inflight))

    async def left(self) -> None:
        await self._presence.leave()
