"""The council's tools, answered from the state store: what a CLI may ask about the others,
and the two things it may do (leave a note, take a file lock).

A ``Desk`` answers for one caller: a session (``Caller``: its session id, its task, the owner
its file locks are taken under), fixed by whoever made the desk, never by what a request says;
or nobody (``caller=None``), the read-only desk of ``council mcp FILE`` without ``--session``,
which answers the questions and refuses the two writes. Every call, whatever came of it, is an
``mcp.call`` event (the tool, the session, the outcome and what it was about; never a note's
text). Every answer is bounded and masked with the run's known secrets.

Tools (``TOOLS``):

- ``who_holds(path)``: the path's owner in the ownership registry (session, fencing token,
  since when) and the sessions whose context says they are changing or working on it;
- ``session_changes(session)``: what a session (or the newest session of a task) changed so far
  against the commit its worktree forked from: git's stat and diff of the worktree (committed
  and not), and the new files not added yet; from its branch once its worktree is gone;
- ``handoff(task, phase)``: the handoff document an earlier phase of a task left;
- ``collisions()``: the collision radar's live collisions the caller's session is in (who, where,
  whether a merge conflicts, what the other changed there: ``radar.warning``); every one of
  the run for the read-only desk;
- ``post_note(to, text)`` and ``read_notes()``: ``coordination.notes``, to a task of the
  store or a session that has a worktree or a context;
- ``request_lock(path)``: the path taken for the caller's lock owner through the run's own
  ``LockManager`` (the ownership registry, the OS lock, a fencing token), never waiting; a path
  someone else holds is refused naming the holder, a path outside the repository (or in its
  ``.git`` or ``.council``) is refused, and so is one past ``LOCK_LIMIT``. The lock is the
  session's like its declared files:
  released with the others when the attempt ends.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio.to_thread

from orchestrator.coordination.notes import Addressee, NoteBook, NoteRefused
from orchestrator.coordination.tools import TOOLS, Tool
from orchestrator.errors import CouncilError, LockError, LockTimeout, PathEscapeError
from orchestrator.events.mcp import McpCall
from orchestrator.git.publish import BRANCHES_PREFIX
from orchestrator.git.repo import Git, GitResult
from orchestrator.ids import is_safe_id
from orchestrator.locks.manager import LockManager
from orchestrator.radar.records import Collision, collisions
from orchestrator.radar.snapshot import admin_dir, private_index
from orchestrator.radar.warning import render_warning
from orchestrator.safety import secret_mask
from orchestrator.safety.paths import RepoPaths
from orchestrator.state.context import ContextManager
from orchestrator.state.protocol import StateStore
from orchestrator.workflow.handoffs.document import load_handoff
from orchestrator.worktrees.models import SessionWorktree
from orchestrator.worktrees.sessions import NAMESPACE as WORKTREES

__all__ = ["ANSWER_LIMIT", "Answer", "Caller", "Desk", "Outcome"]

ANSWER_LIMIT = 24_000  # characters of one answer; a diff is cut there
LOCK_LIMIT = 64  # locks a session holds, its declared files included, when it asks for one
_DETAIL_LIMIT = 300
_COLLISIONS_SHOWN = 12  # a session's collisions told in full; the rest counted
_OFF_LIMITS = (".git", ".council")

Outcome = Literal["ok", "refused", "error"]


_BY_NAME = {tool.name: tool for tool in TOOLS}


@dataclass(frozen=True)
class Caller:
    """The session a desk answers for: fixed when the desk is made."""

    session: str
    task: str | None = None
    lock_owner: str | None = None  # whom its file locks are taken for (None: the session)

    @property
    def owner(self) -> str:
        return self.lock_owner or self.session


@dataclass(frozen=True)
class Answer:
    outcome: Outcome
    text: str


class Refused(Exception):
    """A rule said no; the text says which."""


class Desk:
    def __init__(
        self,
        store: StateStore,
        repo: Path,
        *,
        caller: Caller | None,
        locks: LockManager | None = None,
        on_locked: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self.repo = repo
        self.caller = caller
        self._locks = locks if locks is not None else LockManager(repo, store=store)
        self._paths = RepoPaths(repo)
        self._notes = NoteBook(store)
        self._contexts = ContextManager(store, repo)
        self._on_locked = on_locked  # the session context hears a lock taken

    async def call(self, tool: str, args: Mapping[str, Any]) -> Answer:
        """Answer ``tool`` with ``args``; recorded as an ``mcp.call`` event."""
        subject: str | None = None
        try:
            spec = _BY_NAME.get(tool)
            if spec is None:
                raise Refused(f"no tool {tool!r}; the tools are {', '.join(_BY_NAME)}")
            values = _strings(spec, args)
            named = [values[p] for p in ("path", "session", "task", "to") if p in values]
            subject = named[0] if named else None
            if spec.writes and self.caller is None:
                raise Refused(
                    f"{tool}: this council server is read-only (started without --session)"
                )
            text = await getattr(self, f"_{tool}")(**values)
            answer = Answer("ok", _bounded(text))
        except Refused as exc:
            answer = Answer("refused", _bounded(f"refused: {exc}"))
        except (CouncilError, OSError, ValueError) as exc:
            answer = Answer("error", _bounded(f"error: {exc}"))
        await self.record(tool, answer, subject)
        return answer

    async def record(self, tool: str, answer: Answer, subject: str | None) -> None:
        """The ``mcp.call`` event of one call."""
        caller = self.caller
        detail = "" if answer.outcome == "ok" else answer.text[:_DETAIL_LIMIT]
        event = McpCall(
            tool=tool[:64],
            session=caller.session if caller else None,
            task_id=caller.task if caller else None,
            outcome=answer.outcome,
            subject=subject[:200] if subject else None,
            detail=detail,
        )
        await self.store.emit(event)

    # -- the tools --------------------------------------------------------------------------

    async def _who_holds(self, path: str) -> str:
        rel = self._path(path)
        lines: list[str] = []
        grant = await self._locks.owner_of(rel)
        if grant is None:
            lines.append(f"{rel}: no session holds its lock")
        else:
            mine = self.caller is not None and grant.session == self.caller.owner
            who = "you (your session)" if mine else f"session {grant.session}"
            lines.append(
                f"{rel}: locked by {who}, fencing token {grant.token}, "
                f"since {grant.since.isoformat(timespec='seconds')}"
            )
        for context in await self._contexts.all_contexts():
            if context.touches(rel):
                what = "locked" if rel in context.files_locked else "changing"
                task = f" (task {context.task})" if context.task else ""
                lines.append(
                    f"session {context.session}{task} on {context.cli or 'a CLI'}: "
                    f"{what}, {context.status}"
                )
        return "\n".join(lines)

    async def _session_changes(self, session: str) -> str:
        found = await self._worktree(session)
        if found is None:
            raise Refused(f"no session or task {session!r} has a worktree recorded in this run")
        git = Git(found.path, None)
        header = (
            f"session {found.session_id} (task {found.task_id}, {found.cli}), branch "
            f"{found.branch}, against {found.base_commit[:12]}"
        )
        admin = await anyio.to_thread.run_sync(
            lambda: admin_dir(found.path) if found.path.is_dir() else None
        )
        if admin is not None:
            base = found.base_commit

            def read() -> tuple[GitResult, GitResult]:
                # A diff of a working tree rewrites the index it reads: a copy's, never the
                # session's own (its CLI's ``git add`` would find the index locked).
                with private_index(admin) as env:
                    return (
                        git.run_sync(*_DIFF, base, env=env),
                        git.run_sync(
                            *("--no-optional-locks", "ls-files", "--others"),
                            "--exclude-standard",
                            check=False,
                            env=env,
                        ),
                    )

            diff, new = await anyio.to_thread.run_sync(read)
            untracked = [line for line in new.out.splitlines() if line]
            extra = f"\nnew files, not added yet: {', '.join(untracked)}" if untracked else ""
        else:  # not here (gone, or on another workstation): what its branch holds
            git = Git(self.repo, None)
            refs = (f"refs/heads/{found.branch}", f"{BRANCHES_PREFIX}{found.branch}")
            tips = [tip for tip in [await git.rev_parse(ref) for ref in refs] if tip]
            if not tips:
                raise Refused(
                    f"session {found.session_id}'s worktree is not on this machine and its "
                    f"branch {found.branch} is not here (nor published) yet"
                )
            diff = await git.run(*_DIFF, found.base_commit, tips[0])
            extra = "\n(its worktree is not here: the commits of its branch)"
        if not diff.stdout.strip() and not extra:
            return f"{header}\nno changes so far"
        return f"{header}{extra}\n{diff.stdout}"

    async def _handoff(self, task: str, phase: str) -> str:
        if not (is_safe_id(task) and is_safe_id(phase)):
            raise Refused("task and phase are ids (letters, digits, '.', '_', '-')")
        handoff = await load_handoff(self.store, task, phase)
        if handoff is None:
            raise Refused(f"task {task} has no {phase} handoff (yet)")
        return json.dumps(handoff.model_dump(mode="json"), indent=1)

    async def _collisions(self) -> str:
        found = await collisions(self.store)
        caller = self.caller
        if caller is None:  # the read-only desk: the whole run's
            if not found:
                return "no collisions: no two live sessions change the same files"
            return "\n".join(
                f"task {c.a.task_id} and task {c.b.task_id}: {c.severity} on "
                f"{', '.join(c.paths)}"
                + (f" (a merge conflicts on {', '.join(c.conflict_paths)})" if c.conflict else "")
                for c in found
            )
        mine = [
            c
            for c in found
            if caller.session in _sessions_of(c) or (caller.task and c.involves(caller.task))
        ]
        if not mine:
            return "no live session changes the same files as yours"
        return render_warning(mine, _side_of(mine[0], caller), limit=_COLLISIONS_SHOWN)

    async def _post_note(self, to: str, text: str) -> str:
        caller = self._caller()
        if not is_safe_id(to) or not await self._known(to):
            raise Refused(f"{to!r} is no session or task of this repository's runs")
        try:
            key = await self._notes.post(caller.session, caller.task, to, text)
        except NoteRefused as exc:
            raise Refused(str(exc)) from None
        return f"note {key} left for {to}"

    async def _read_notes(self) -> str:
        if self.caller is None:
            notes = await self._notes.all()
            if not notes:
                return "no notes in this run"
            return "\n\n".join(f"to {n.to}, from {n.sender}: {n.text}" for n in notes)
        caller = self.caller
        notes = await self._notes.take(Addressee(caller.session, caller.task))
        if not notes:
            return "no unread notes for you"
        return "\n\n".join(
            f"from session {n.sender}"
            + (f" (task {n.sender_task})" if n.sender_task else "")
            + f" to {n.to}:\n{n.text}"
            for n in notes
        )

    async def _request_lock(self, path: str) -> str:
        caller = self._caller()
        rel = self._path(path)
        current = await self._locks.owner_of(rel)
        if current is not None and current.session == caller.owner:
            return f"{rel}: already yours, fencing token {current.token}"
        if current is not None:
            raise Refused(
                f"{rel} is locked by session {current.session} (fencing token {current.token}); "
                "leave it a note or work on something else"
            )
        if len(self._locks.held(caller.owner)) >= LOCK_LIMIT:
            raise Refused(f"a session holds at most {LOCK_LIMIT} locks")
        try:
            grant = await self._locks.acquire_file_lock(caller.owner, rel, timeout=0.5)
        except (LockTimeout, LockError) as exc:
            raise Refused(str(exc)) from None
        if self._on_locked is not None:
            await self._on_locked(grant.path)
        return f"{grant.path}: lock granted to you, fencing token {grant.token}"

    # -- helpers ----------------------------------------------------------------------------

    def _caller(self) -> Caller:
        if self.caller is None:  # checked in ``call`` for the tools that write
            raise Refused("this council server is read-only (started without --session)")
        return self.caller

    def _path(self, path: str) -> str:
        try:
            rel = self._paths.normalize(path)
        except (PathEscapeError, ValueError) as exc:
            raise Refused(f"{path!r} is not a path inside the repository ({exc})") from None
        if rel in ("", ".") or rel.split("/")[0] in _OFF_LIMITS:
            raise Refused(f"{path!r} is not a file of the repository's work")
        return rel

    async def _known(self, name: str) -> bool:
        """A task of the store, or a session (or task) with a worktree or a context."""
        if await self.store.get_task_state(name) is not None:
            return True
        if await self._worktree(name) is not None:
            return True
        return any(name in (c.session, c.task) for c in await self._contexts.all_contexts())

    async def _worktree(self, name: str) -> SessionWorktree | None:
        if not is_safe_id(name):
            return None
        record = await self.store.get_record(WORKTREES, name)
        if record is not None:
            return SessionWorktree.model_validate(record.data)
        of_task: list[SessionWorktree] = []
        for record in await self.store.list_records(WORKTREES):
            try:
                found = SessionWorktree.model_validate(record.data)
            except ValueError:
                continue
            if found.task_id == name:
                of_task.append(found)
        return max(of_task, key=lambda s: s.created_at) if of_task else None


# git's stat, then the patch, from one process
_DIFF = (
    *("--no-optional-locks", "diff", "--no-ext-diff", "--no-textconv", "--no-color"),
    *("--stat", "--patch"),
)


def _sessions_of(collision: Collision) -> tuple[str, str]:
    return (collision.a.session_id, collision.b.session_id)


def _side_of(collision: Collision, caller: Caller) -> str:
    """The caller's task as the collision names it (by its session, else by its task)."""
    if caller.session == collision.b.session_id:
        return collision.b.task_id
    if caller.session == collision.a.session_id:
        return collision.a.task_id
    return caller.task or collision.a.task_id


def _strings(spec: Tool, args: Mapping[str, Any]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name in spec.params:
        value = args.get(name)
        if not isinstance(value, str) or not value.strip():
            raise Refused(f"{spec.name} needs {name} (a non-empty string)")
        values[name] = value.strip()
    return values


def _bounded(text: str) -> str:
    text = secret_mask.hidden(text)
    if len(text) <= ANSWER_LIMIT:
        return text
    return text[:ANSWER_LIMIT] + f"\n[... cut at {ANSWER_LIMIT} characters]"
