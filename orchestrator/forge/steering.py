"""Steering from the issue: a person with write access answers on a task's issue or its pull
request with a short command, and the run does it, exactly once.

A command is a line of its own in a comment, outside quotes (``> ``) and code (fenced, or
indented four spaces), case and spacing free::

    /council go on          the budget that holds the task gets its configured limit once more
    /council raise 5        that budget gets $5 more (``$5.50`` too)
    /council stop           the task is cancelled, as ``council cancel`` does
    /council retry          a task that ended failed, conflict or cancelled is queued again,
                            with its whole retry allowance, its work kept
    /council rebase         a task whose pull request is open is built again on the base as
                            the remote has it now, pushed to the same pull request

The first command line of a comment counts. Only a command from a person the run trusts is
taken (``forge.trust``: ``forge.trusted``, by default the people with write access, confirmed
by the collaborators API); anyone else's is ignored: no reaction, no answer, nothing done.
A trusted command that cannot be read (``/council raise abc``, a word that is no command) gets
a short answer saying what is wrong.

``Steering.poll_once`` lists the repository's comments updated since the newest one it saw
(one conditional request: a 304 from the forge client's ETag cache while nothing was written;
the cursor is kept in the store, ``CURSOR``, so a restart starts where the last run left
off). On its very first poll in a store it only notes where the conversation stands: commands
written before the council ever listened are not taken.

Exactly once, across restarts and workstations: a command is taken by creating the keyed
record ``steering/<comment id>`` (compare-and-set, "must not exist"); whoever fails to create
it leaves the comment alone. The record is created with a lease (``_TAKING`` seconds) and made
lasting once the command was done and answered. The cursor is kept only after a poll's
commands were handled, so a restart reads again the comments a crash cut short: a command
whose taker died is taken again then (at once when the dead taker was a process of this
machine, its pid gone; after the lease otherwise). A taken command gets a ``+1`` reaction, is
done by the run's ``Helm`` (what each command does is the run's, above this layer), and
answered by one comment in the council's own words.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import anyio

from orchestrator.errors import VersionConflict
from orchestrator.events.base import Event
from orchestrator.events.issues import ForgeCallFailed
from orchestrator.forge.base import Comment, Forge
from orchestrator.forge.outage import outage_of
from orchestrator.forge.public_text import own
from orchestrator.forge.trust import WRITE_ACCESS, Trust
from orchestrator.models import KeyedRecord
from orchestrator.safety import secret_mask
from orchestrator.state.protocol import StateStore

__all__ = [
    "CURSOR",
    "STEERING",
    "Command",
    "Helm",
    "Problem",
    "Steering",
    "SteeringRefused",
    "cursor_key",
    "parse",
]

_log = logging.getLogger(__name__)

STEERING = "steering"  # keyed records: comment id -> the command taken and what was done
CURSOR = "steering-cursor"  # keyed records: repository's key -> the newest comment time seen
_TAKING = 120.0  # seconds a taken command's record holds before another may take it again
_PREFIX = re.compile(r"^ {0,3}/council(?:\s+(?P<rest>.*))?$", re.IGNORECASE)
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_QUOTE = re.compile(r"^ {0,3}>")
_AMOUNT = re.compile(r"^\$?\s*(?P<usd>[0-9]+(?:\.[0-9]+)?)$")
_KNOWN = (
    "`/council go on`, `/council raise <usd>`, `/council stop`, `/council retry`, `/council rebase`"
)
_MAX_USD = 1_000_000.0

Verb = Literal["go on", "raise", "stop", "retry", "rebase"]
Emit = Callable[[Event], Awaitable[None]]


@dataclass(frozen=True)
class Command:
    verb: Verb
    usd: float | None = None  # ``raise``: how many dollars more

    def said(self) -> str:
        """The command as the council writes it back."""
        if self.usd is not None:
            return f"/council {self.verb} {self.usd:g}"
        return f"/council {self.verb}"


@dataclass(frozen=True)
class Problem:
    """A command line that is not a command the council can take: ``why`` says what is wrong."""

    why: str


def parse(body: str) -> Command | Problem | None:
    """The first command line of a comment's ``body`` (module doc); None when it has none."""
    fenced: str | None = None
    for line in body.splitlines():
        fence = _FENCE.match(line)
        if fence is not None:
            if fenced is None:
                fenced = fence.group(1)
            elif fence.group(1) == fenced:
                fenced = None
            continue
        if fenced is not None or _QUOTE.match(line):
            continue
        found = _PREFIX.match(line.rstrip())
        if found is not None:
            return _command(" ".join((found.group("rest") or "").split()).lower())
    return None


def _command(rest: str) -> Command | Problem:
    if rest in ("go on", "goon", "go-on"):
        return Command("go on")
    if rest == "stop":
        return Command("stop")
    if rest == "retry":
        return Command("retry")
    if rest == "rebase":
        return Command("rebase")
    if rest == "raise" or rest.startswith("raise "):
        amount = rest[len("raise") :].strip()
        found = _AMOUNT.match(amount)
        if found is None:
            what = f"`{amount[:20]}`" if amount else "nothing"
            return Problem(
                f"`/council raise` takes an amount in US dollars, such as `/council raise 5` "
                f"or `/council raise $5.50`; it was given {what}"
            )
        usd = float(found.group("usd"))
        if not 0 < usd <= _MAX_USD:
            return Problem(
                f"`/council raise` takes an amount above $0 and at most ${_MAX_USD:,.0f}"
            )
        return Command("raise", usd)
    word = rest.split(" ", 1)[0][:20]
    said = f"`{word}` is not a command" if word else "the command is missing"
    return Problem(f"{said}; the commands are {_KNOWN}")


def cursor_key(repo: str) -> str:
    """The ``CURSOR`` record's key of repository ``repo`` (``OWNER/NAME`` is no safe id)."""
    return hashlib.sha256(repo.lower().encode()).hexdigest()[:32]


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SteeringRefused(Exception):
    """A command the run cannot do now (nothing held, the task already ended): the message
    is the answer on the issue."""


class Helm(Protocol):
    """What the run does for each command; each returns one sentence saying what was done
    (raises ``SteeringRefused`` to answer why it was not)."""

    async def task_of(self, number: int) -> str | None:
        """The run's task whose issue or pull request is ``number``; None: not the run's."""
        ...

    async def go_on(self, task_id: str) -> str: ...

    async def raise_by(self, task_id: str, usd: float) -> str: ...

    async def stop(self, task_id: str) -> str: ...

    async def retry(self, task_id: str) -> str: ...

    async def rebase(self, task_id: str) -> str: ...


@dataclass(frozen=True)
class Taken:
    """A command this process took: the comment, its task, and the answer it posted."""

    comment: int
    number: int
    task_id: str
    command: str
    answer: str


class Steering:
    def __init__(
        self,
        forge: Forge,
        store: StateStore,
        helm: Helm,
        *,
        trust: Trust | None = None,
        emit: Emit | None = None,
    ) -> None:
        self._forge = forge
        self._trust = trust if trust is not None else Trust(forge, WRITE_ACCESS)
        self._store = store
        self._helm = helm
        self._emit = emit
        self._since: str | None = None
        self._loaded = False
        self._seen: set[int] = set()  # comments read at the cursor's time already
        self._holder = f"{socket.gethostname()}:{os.getpid()}"
        self._cursor_key = cursor_key(forge.repo)

    async def follow(self, every: float) -> None:
        """``poll_once`` every ``every`` seconds until cancelled; nothing it meets ends it."""
        while True:
            try:
                await self.poll_once()
            except Exception as exc:  # the run goes on without this read
                await self._warn("read the comments for commands", None, exc)
            else:
                if outage_of(self._forge).answered():
                    _log.warning("forge: answering again")  # after the failure said
            await anyio.sleep(every)

    async def poll_once(self) -> list[Taken]:
        """Read the comments written since the last poll and take the commands among them."""
        if not self._loaded:
            record = await self._store.get_record(CURSOR, self._cursor_key)
            since = record.data.get("since") if record is not None else None
            self._since = since if isinstance(since, str) else None
            self._loaded = True
            if self._since is None:  # the first in this store: where the conversation stands
                await self._note_cursor(await self._forge.list_repo_comments())
                return []
        comments = await self._forge.list_repo_comments(since=self._since or None)
        taken: list[Taken] = []
        for comment in comments:
            if comment.id in self._seen:
                continue
            done = await self._consider(comment)
            if done is not None:
                taken.append(done)
        await self._note_cursor(comments)
        return taken

    async def _note_cursor(self, comments: list[Comment]) -> None:
        """Move the cursor to the newest comment read (kept in the store once it moved): the
        next poll lists from there, its comments read now skipped (``since`` includes it)."""
        newest = max((c.updated_at for c in comments if c.updated_at), default=None)
        if newest is None or (self._since and newest < self._since):
            if self._since is not None:
                return
            newest = ""  # the first poll found no comment: all that comes is new
        if newest != self._since:
            self._seen = set()
        self._seen |= {c.id for c in comments if c.updated_at == newest}
        if newest == self._since:
            return
        self._since = newest
        await self._store.put_record(CURSOR, self._cursor_key, {"since": newest}, durable=False)

    async def _consider(self, comment: Comment) -> Taken | None:
        parsed = parse(comment.body)
        if parsed is None:
            return None
        # Asked only of a command (the collaborators API, once a login a run); a forge that
        # does not answer raises: the poll's cursor stays, and the comment is read again.
        if not await self._trust.trusts(comment.author, comment.association):
            return None
        task_id = await self._helm.task_of(comment.issue)
        if task_id is None:
            return None
        said = parsed.said() if isinstance(parsed, Command) else "a command"
        record = {
            "comment": comment.id,
            "number": comment.issue,
            "task_id": task_id,
            "command": said,
            "by": self._holder,
        }
        claim = await self._take(comment.id, {**record, "state": "taking"})
        if claim is None:
            return None  # taken already, here before a restart or by another workstation
        answer = await self._act(comment, parsed, task_id)
        try:
            await self._store.put_record(
                STEERING,
                str(comment.id),
                {**record, "state": "done", "answer": answer},
                claim.version,
            )
        except VersionConflict:
            _log.warning("steering: comment %d was taken again meanwhile", comment.id)
        return Taken(comment.id, comment.issue, task_id, said, answer)

    async def _take(self, comment: int, data: dict[str, object]) -> KeyedRecord | None:
        """Create the command's record (None: another has it). A record a dead process of
        this machine was taking is taken over at once (a restart), not after its lease."""
        try:
            return await self._store.put_record(STEERING, str(comment), data, 0, ttl=_TAKING)
        except VersionConflict:
            pass
        found = await self._store.get_record(STEERING, str(comment))
        if found is None or found.data.get("state") != "taking":
            return None
        host, _, pid = str(found.data.get("by", "")).rpartition(":")
        if host != socket.gethostname() or not pid.isdigit() or _alive(int(pid)):
            return None
        try:
            return await self._store.put_record(
                STEERING, str(comment), data, found.version, ttl=_TAKING
            )
        except VersionConflict:
            return None

    async def _act(self, comment: Comment, parsed: Command | Problem, task_id: str) -> str:
        number = comment.issue
        if isinstance(parsed, Problem):
            answer = f"CLI Council did not take this: {parsed.why}."
        else:
            await self._call("react to a command", number, self._forge.react(comment.id, "+1"))
            try:
                if parsed.verb == "go on":
                    done = await self._helm.go_on(task_id)
                elif parsed.verb == "raise":
                    assert parsed.usd is not None
                    done = await self._helm.raise_by(task_id, parsed.usd)
                elif parsed.verb == "retry":
                    done = await self._helm.retry(task_id)
                elif parsed.verb == "rebase":
                    done = await self._helm.rebase(task_id)
                else:
                    done = await self._helm.stop(task_id)
                answer = f"CLI Council took `{parsed.said()}` for task `{task_id}`: {done}"
            except SteeringRefused as exc:
                answer = f"CLI Council could not do `{parsed.said()}` for task `{task_id}`: {exc}"
        await self._call("answer a command", number, self._forge.comment(number, own(answer)))
        return answer

    async def _call(self, action: str, number: int, call: Awaitable[object]) -> None:
        try:
            await call
        except Exception as exc:  # a reaction or an answer lost is said, never the run's end
            await self._warn(action, number, exc)

    async def _warn(self, action: str, number: int | None, exc: Exception) -> None:
        error = secret_mask.mask()(str(exc)) or type(exc).__name__
        if number is None and not outage_of(self._forge).failed(error):
            return  # the forge fails as it did when last said (``forge.outage``)
        _log.warning("forge: %s failed: %s", action, error)
        if self._emit is None:
            return
        try:
            await self._emit(ForgeCallFailed(action=action, issue=number, error=error))
        except Exception:
            _log.exception("could not record forge.call_failed")
