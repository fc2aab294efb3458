"""What ``StateStore.health()`` reports: how the store is doing now, in one model.

Both backends fill the same fields (record counts per kind, damaged records, stale locks, the
oldest active claim, the largest records and those over the size threshold, the event log's
size, the age of the newest checkpoint) and add their own under ``backend`` (the file store:
free disk space; PostgreSQL: latency, schema version, table sizes). Looking is read-only: a
damaged record is named, never recovered here (``verify_records`` does that).

Each thing worth a look is a ``HealthFinding``: a ``problem`` makes the store unhealthy (a run
may fail on it: a damaged record, a disk about to fill), a ``warning`` does not (a stale lock,
an oversized record, a claim past its lease that no sweep has ended yet).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.models import CheckpointInfo, TaskState, utcnow

__all__ = [
    "DEFAULT_LARGE_RECORD_BYTES",
    "LOW_DISK_BYTES",
    "ActiveClaim",
    "DamagedRecord",
    "HealthFinding",
    "RecordSize",
    "StoreHealth",
    "finish_health",
    "newest_checkpoint",
    "oldest_active_claim",
]

DEFAULT_LARGE_RECORD_BYTES = 1024 * 1024
"""A record bigger than this is flagged: every write rewrites it whole, and a task's record
that grows without bound (output kept in metadata) slows every tick down."""

LOW_DISK_BYTES = 100 * 1024 * 1024
"""Less free space than this under the file store is a problem: a full disk stops records."""

_LARGEST = 5  # how many of the largest records the report names


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class RecordSize(_Model):
    kind: str
    key: str
    size: int  # bytes, as stored


class DamagedRecord(_Model):
    kind: str
    key: str
    reason: str


class ActiveClaim(_Model):
    task_id: str
    holder: str
    acquired_at: datetime
    expires_at: datetime


class HealthFinding(_Model):
    level: Literal["problem", "warning"]
    text: str


class StoreHealth(_Model):
    backend: Literal["file", "postgresql"]
    where: str
    checked_at: datetime = Field(default_factory=utcnow)
    record_counts: dict[str, int]
    damaged: list[DamagedRecord]
    stale_locks: int
    oldest_active_claim: ActiveClaim | None
    largest_records: list[RecordSize]
    large_record_bytes: int
    over_threshold: list[RecordSize]
    event_log_bytes: int
    last_checkpoint_at: datetime | None
    backend_details: dict[str, Any]
    findings: list[HealthFinding] = Field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not any(f.level == "problem" for f in self.findings)

    @property
    def last_checkpoint_age(self) -> float | None:
        """Seconds since the newest checkpoint was taken (None: there is none)."""
        if self.last_checkpoint_at is None:
            return None
        return max(0.0, (self.checked_at - self.last_checkpoint_at).total_seconds())


def oldest_active_claim(tasks: list[TaskState]) -> ActiveClaim | None:
    claims = [t.claim for t in tasks if t.claim is not None and t.claim.status == "active"]
    if not claims:
        return None
    oldest = min(claims, key=lambda c: c.acquired_at)
    return ActiveClaim(
        task_id=oldest.task_id,
        holder=oldest.holder,
        acquired_at=oldest.acquired_at,
        expires_at=oldest.expires_at,
    )


def newest_checkpoint(checkpoints: list[CheckpointInfo]) -> datetime | None:
    return max((c.created_at for c in checkpoints), default=None)


def finish_health(fields: dict[str, Any], sizes: list[RecordSize], threshold: int) -> StoreHealth:
    """The report from what a backend measured: the largest records picked out of ``sizes``,
    and the findings every backend shares (its own are in ``fields["findings"]`` already)."""
    ranked = sorted(sizes, key=lambda s: (-s.size, s.kind, s.key))
    over = [s for s in ranked if s.size > threshold]
    findings: list[HealthFinding] = list(fields.pop("findings", []))
    damaged: list[DamagedRecord] = fields["damaged"]
    if damaged:
        named = ", ".join(f"{d.kind}/{d.key}" for d in damaged[:3])
        findings.append(
            HealthFinding(
                level="problem",
                text=f"{len(damaged)} damaged record(s): {named} "
                "(`council state verify` recovers what history can)",
            )
        )
    if fields["stale_locks"]:
        findings.append(
            HealthFinding(
                level="warning",
                text=f"{fields['stale_locks']} stale lock or temp file(s) left by dead writers "
                "(`council clean` removes them; a run's monitor does too)",
            )
        )
    if over:
        named = ", ".join(f"{s.kind}/{s.key} ({s.size} bytes)" for s in over[:3])
        findings.append(
            HealthFinding(
                level="warning",
                text=f"{len(over)} record(s) over {threshold} bytes: {named}",
            )
        )
    claim: ActiveClaim | None = fields["oldest_active_claim"]
    now = fields.get("checked_at") or utcnow()
    if claim is not None and claim.expires_at < now:
        findings.append(
            HealthFinding(
                level="warning",
                text=f"the claim of {claim.holder} on {claim.task_id} is past its lease "
                "(the next run's sweep puts the task back in the queue)",
            )
        )
    return StoreHealth(
        **fields,
        checked_at=now,
        largest_records=ranked[:_LARGEST],
        large_record_bytes=threshold,
        over_threshold=over,
        findings=findings,
    )
