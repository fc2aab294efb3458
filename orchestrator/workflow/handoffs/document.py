"""Handoff documents: what one workflow phase hands to the next.

Contract:

- A ``Handoff`` is a validated pydantic model (unknown keys refused). It carries the CLI's own
  words (``summary``: its final text; ``messages``: what it said on the way) next to the facts
  the orchestrator established itself (``files_changed``, ``diff_stat``, ``commits``, ``diff``,
  ``verify`` results, the plan's ``files_to_touch``, the review's ``verdict``), the task's
  ``requirements`` and ``constraints``, and a sha256 of each artifact (``summary``, ``diff``)
  so a reader can tell the text it holds is the text that was produced.
- A ``Handoff`` never holds a secret: every known one (``secret_mask``) is masked as the model
  is made, before anything stores it (a CLI may write its key into a file, which the diff then
  shows; a verify command may print one), and the digest of an artifact the mask changed is
  that of its masked text, so the digests describe what is stored.
- ``needs`` names the keys the next phase reads (``NEEDS`` by consumer: plan reads the
  requirements, constraints and the scout's findings; build reads the plan; review reads the
  implementation; a build sent back by review reads the review, ``FEEDBACK_NEEDS``). Only those
  keys are rendered into the next prompt (``orchestrator.workflow.handoffs.prompts``).
- A phase's handoff is stored in the state store as keyed record ``handoffs/<task>.<phase>``
  (the latest one of that phase) and written to ``<worktree>/.council/handoff/<phase>.json``,
  which git never sees (``.council/`` is excluded by the worktree layer). ``digest`` is what the
  phase's ``PhaseRecord.handoff_sha256`` holds, so a resumed run can tell that a stored
  handoff is the one its completed phase produced.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Self

import anyio.to_thread
from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.id_fields import SafeId
from orchestrator.ids import is_safe_id
from orchestrator.models import utcnow
from orchestrator.safety.safe_write import write_atomic
from orchestrator.safety.secret_mask import deep, mask, needles, plain
from orchestrator.state.protocol import StateStore

__all__ = [
    "FEEDBACK_NEEDS",
    "HANDOFF_DIR",
    "NAMESPACE",
    "NEEDS",
    "DiffStat",
    "Handoff",
    "HandoffKeeping",
    "HandoffKey",
    "Verdict",
    "VerifyRecord",
    "handoff_keeping",
    "handoff_key",
    "load_handoff",
    "needs_for",
    "sha256_text",
    "store_handoff",
    "write_handoff_file",
]

NAMESPACE = "handoffs"
HANDOFF_DIR = Path(".council") / "handoff"

HandoffKey = Literal[
    "requirements",
    "constraints",
    "summary",
    "messages",
    "files_to_touch",
    "files_changed",
    "diff_stat",
    "commits",
    "diff",
    "verify",
    "verdict",
]
Verdict = Literal["approve", "request-changes"]

NEEDS: dict[str, tuple[HandoffKey, ...]] = {
    "scout": ("requirements", "constraints"),
    "plan": ("requirements", "constraints", "summary"),
    "build": ("summary", "files_to_touch"),
    "review": ("summary", "files_changed", "diff_stat", "commits", "verify", "diff"),
}
FEEDBACK_NEEDS: tuple[HandoffKey, ...] = ("verdict", "summary", "messages")
_DEFAULT_NEEDS: tuple[HandoffKey, ...] = ("summary",)


def needs_for(consumer: str | None) -> list[HandoffKey]:
    """The keys phase ``consumer`` reads from the handoff before it (none after the last)."""
    if consumer is None:
        return []
    return list(NEEDS.get(consumer, _DEFAULT_NEEDS))


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DiffStat(_Doc):
    files: int = Field(ge=0)
    insertions: int = Field(ge=0)
    deletions: int = Field(ge=0)
    commits_ahead: int = Field(ge=0)


class VerifyRecord(_Doc):
    """One verify command as it ran in the worktree."""

    model_config = ConfigDict(defer_build=True)  # seldom validated: built on first use

    argv: list[str]
    ok: bool
    returncode: int | None  # None: killed for its timeout, or it could not be started
    timed_out: bool = False
    seconds: float = 0.0
    output_tail: str = ""


class Handoff(_Doc):
    schema_version: Literal[1] = 1
    task: SafeId
    phase: SafeId
    adapter: SafeId
    round: int = Field(default=1, ge=1, description="build/review round this phase ran in")
    branch: str
    head: str | None = Field(default=None, description="the worktree's HEAD after the phase")
    native_session_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    # The CLI's own words.
    summary: str = ""
    messages: list[str] = Field(default_factory=list)
    # What the orchestrator knows or established itself.
    requirements: str = ""
    constraints: list[str] = Field(default_factory=list)
    files_to_touch: list[str] = Field(default_factory=list)
    files_changed: list[str] = Field(default_factory=list)
    diff_stat: DiffStat | None = None
    commits: list[str] = Field(default_factory=list)
    diff: str = ""
    diff_truncated: bool = False
    verify: list[VerifyRecord] = Field(default_factory=list)
    verdict: Verdict | None = None
    verdict_stated: bool = Field(
        default=False, description="False when the review gave no verdict line (approve)"
    )
    sha256: dict[Literal["summary", "diff"], str] = Field(default_factory=dict)
    needs: list[HandoffKey] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _no_secrets(cls, data: Any) -> Any:
        """Every known secret masked (``secret_mask``) before the document exists, wherever it
        came from (a CLI's words, the diff of files it wrote, a verify command's output), so
        the store and the worktree file hold it as it is. An artifact the mask changed gets
        the digest of its masked text (a truncated diff keeps that of its whole text)."""
        if not isinstance(data, dict) or not (mask() or needles()):
            return data
        flat = plain(data)
        masked = deep(flat)  # also a secret wrapped over lines in a diff (``hidden``)
        if masked is flat:
            return data
        digests = dict(masked.get("sha256") or {})
        if "summary" in digests and masked.get("summary") != data.get("summary"):
            digests["summary"] = sha256_text(str(masked.get("summary", "")))
        diff_changed = masked.get("diff") != data.get("diff")
        if "diff" in digests and diff_changed and not masked.get("diff_truncated"):
            digests["diff"] = sha256_text(str(masked.get("diff", "")))
        return {**masked, "sha256": digests}

    @model_validator(mode="after")
    def _artifacts_match_their_digests(self) -> Self:
        if "summary" in self.sha256 and self.sha256["summary"] != sha256_text(self.summary):
            raise ValueError("sha256.summary does not match the summary")
        if (
            "diff" in self.sha256
            and not self.diff_truncated
            and self.sha256["diff"] != sha256_text(self.diff)
        ):
            raise ValueError("sha256.diff does not match the diff")
        return self

    @property
    def digest(self) -> str:
        """sha256 of the whole document, its keys sorted: the same after any store's round
        trip (PostgreSQL's jsonb orders an object's keys its own way, so a digest of the
        document as written once never matched what a takeover read back, and every completed
        build ran again on top of itself)."""
        canonical = json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return sha256_text(canonical)

    def matches(self, digest: str) -> bool:
        """``digest`` is this document's (or, for a record written before the digest was
        canonical, its digest then: the document as serialized in field order)."""
        return digest == self.digest or digest == sha256_text(self.model_dump_json())


def handoff_key(task_id: str, phase: str) -> str:
    """The keyed-record key of a task's phase handoff (a safe id even for long task ids)."""
    key = f"{task_id}.{phase}"
    if is_safe_id(key):
        return key
    # Long ids: keep a readable prefix, and a hash so two long task ids never collide.
    digest = sha256_text(f"{task_id}\0{phase}")[:16]
    return f"{task_id[:30].rstrip('.')}.{phase[:14].rstrip('.')}.{digest}"


async def store_handoff(store: StateStore, handoff: Handoff) -> None:
    await store.put_record(
        NAMESPACE, handoff_key(handoff.task, handoff.phase), handoff.model_dump(mode="json")
    )


async def load_handoff(
    store: StateStore, task_id: str, phase: str, digest: str | None = None
) -> Handoff | None:
    """The stored handoff of ``phase``; None when absent, invalid, or not ``digest``."""
    record = await store.get_record(NAMESPACE, handoff_key(task_id, phase))
    if record is None:
        return None
    try:
        handoff = Handoff.model_validate(record.data)
    except ValueError:
        return None
    if digest is not None and not handoff.matches(digest):
        return None
    return handoff


@dataclass(frozen=True)
class HandoffKeeping:
    """A phase's handoff file and record as one keyed record's write: ``make`` writes the
    file (blocking), then gives the record's data; the store writes ``NAMESPACE``/``key``
    in the same worker-thread call (``StateStore.put_made_record`` and its kin)."""

    key: str
    make: Callable[[], tuple[dict[str, Any], Path]]
    namespace: str = NAMESPACE


def handoff_keeping(worktree: Path, handoff: Handoff) -> HandoffKeeping:
    """``handoff``'s file and record, to be written by one store call: the file first, then
    the record. A crash between them leaves a file no record names, which the phase's next
    run (it is not recorded complete yet) writes again; a file that cannot be written (a
    link the CLI planted) stores nothing."""
    target, data = _handoff_file(worktree, handoff)

    def made() -> tuple[dict[str, Any], Path]:
        write_atomic(worktree, target, data)
        return handoff.model_dump(mode="json"), target

    return HandoffKeeping(handoff_key(handoff.task, handoff.phase), made)


async def write_handoff_file(worktree: Path, handoff: Handoff) -> Path:
    """Write the handoff to ``<worktree>/.council/handoff/<phase>.json`` (atomically)."""
    target, data = _handoff_file(worktree, handoff)
    await anyio.to_thread.run_sync(write_atomic, worktree, target, data)
    return target


def _handoff_file(worktree: Path, handoff: Handoff) -> tuple[Path, bytes]:
    """Where the handoff's file goes, and its bytes."""
    # The CLI owns the worktree: no link it planted on the way, at the file or at a temp
    # name, may turn this write into one outside it (``safe_write``).
    target = worktree / HANDOFF_DIR / f"{handoff.phase}.json"
    return target, (handoff.model_dump_json(indent=2) + "\n").encode()
