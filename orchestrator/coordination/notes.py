"""Notes between sessions: a CLI leaves one for another session (or for whoever works on a
task), and reads those left for it.

One keyed record per note in the state store (namespace ``notes``, key ``n-<time>-<random>``),
so both backends hold them and every workstation of a team sees them. A note is addressed to a
session id or a task id; reading gives the caller the notes addressed to its session or its
task, oldest first, and marks them read (a compare-and-set of the record: two readers never
both take one as unread). Bounded: ``TEXT_LIMIT`` characters a note, ``UNREAD_LIMIT`` unread
notes an addressee, ``SENT_LIMIT`` notes a sender, ``READ_LIMIT`` notes a read. The text is
masked with the run's known secrets before it is stored (the store masks its records too; a
note is also handed to another CLI's model, so it is masked here, where it is made).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import VersionConflict
from orchestrator.id_fields import SafeId
from orchestrator.ids import check_id
from orchestrator.models import KeyedRecord
from orchestrator.safety import secret_mask
from orchestrator.state.protocol import StateStore

__all__ = [
    "NAMESPACE",
    "READ_LIMIT",
    "SENT_LIMIT",
    "TEXT_LIMIT",
    "UNREAD_LIMIT",
    "Addressee",
    "Note",
    "NoteBook",
    "NoteRefused",
]

NAMESPACE = "notes"
TEXT_LIMIT = 4000
UNREAD_LIMIT = 50
SENT_LIMIT = 200  # notes one session may leave, read or not
READ_LIMIT = 20


class NoteRefused(ValueError):
    """A note that cannot be left: empty, too long, or its addressee's box is full."""


class Note(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    sender: SafeId  # the session that left it
    sender_task: SafeId | None = None
    to: SafeId  # a session id or a task id
    text: str = Field(max_length=TEXT_LIMIT)
    at: float  # seconds since the epoch
    read: bool = False


@dataclass(frozen=True)
class Addressee:
    """Who reads: a session, and the task it works on (notes to either are its)."""

    session: str
    task: str | None = None

    def owns(self, note: Note) -> bool:
        return note.to == self.session or (self.task is not None and note.to == self.task)


class NoteBook:
    def __init__(self, store: StateStore) -> None:
        self._store = store

    async def post(self, sender: str, sender_task: str | None, to: str, text: str) -> str:
        """Leave ``text`` for ``to``; the note's key."""
        check_id(to, "addressee (a session or task id)")
        text = text.strip()
        if not text:
            raise NoteRefused("a note needs some text")
        if len(text) > TEXT_LIMIT:
            raise NoteRefused(f"a note holds at most {TEXT_LIMIT} characters ({len(text)} given)")
        notes = [n for _, n in await self._notes()]
        if sum(n.sender == sender for n in notes) >= SENT_LIMIT:
            raise NoteRefused(f"a session leaves at most {SENT_LIMIT} notes")
        unread = [n for n in notes if n.to == to and not n.read]
        if len(unread) >= UNREAD_LIMIT:
            raise NoteRefused(f"{to} has {len(unread)} unread notes already; wait until it reads")
        note = Note(
            sender=sender,
            sender_task=sender_task,
            to=to,
            text=secret_mask.hidden(text),
            at=time.time(),
        )
        key = f"n-{time.time_ns():x}-{secrets.token_hex(4)}"
        await self._store.put_record(NAMESPACE, key, note.model_dump(mode="json"), 0)
        return key

    async def take(self, reader: Addressee) -> list[Note]:
        """The unread notes for ``reader``, oldest first (at most ``READ_LIMIT``), now read."""
        taken: list[Note] = []
        for record, note in await self._notes():
            if len(taken) >= READ_LIMIT:
                break
            if note.read or not reader.owns(note):
                continue
            marked = note.model_copy(update={"read": True})
            try:
                await self._store.put_record(
                    NAMESPACE, record.key, marked.model_dump(mode="json"), record.version
                )
            except VersionConflict:
                continue  # another reader of the same task took it
            taken.append(note)
        return taken

    async def all(self, to: str | None = None) -> list[Note]:
        """Every note (or those to ``to``), oldest first, newest ``READ_LIMIT``; none marked."""
        notes = [n for _, n in await self._notes() if to is None or n.to == to]
        return notes[-READ_LIMIT:]

    async def _notes(self) -> list[tuple[KeyedRecord, Note]]:
        found: list[tuple[KeyedRecord, Note]] = []
        for record in await self._store.list_records(NAMESPACE):
            try:
                found.append((record, Note.model_validate(record.data)))
            except ValueError:
                continue  # not a note this version can read: left alone
        found.sort(key=lambda pair: (pair[1].at, pair[0].key))
        return found
