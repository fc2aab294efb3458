"""A keyed record and a task written in one transaction (``put_made_record_and_task``).

The record's row is locked before the task's (the global order of ``state.transactions``,
``records`` before ``tasks``, as ``PgTransactions`` takes them), the task's version and fence
checked, then the record's, the record written and the task after it; the commit makes both
or neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.errors import VersionConflict
from orchestrator.events import Event
from orchestrator.ids import check_id
from orchestrator.models import KeyedRecord, TaskState
from orchestrator.state.claim_rules import check_fence
from orchestrator.state.expiry import live
from orchestrator.state.postgres.core import Conn, PgCore
from orchestrator.state.postgres.keyed import expect_version, read_record, write_record
from orchestrator.state.postgres.tasks import locked_task, write_task

__all__ = ["record_and_task"]


async def record_and_task(
    core: PgCore,
    namespace: str,
    key: str,
    data: Mapping[str, Any],
    task_id: str,
    updates: Mapping[str, Any],
    *,
    expected_version: int | None,
    fencing_token: int | None,
    record_version: int | None,
) -> tuple[KeyedRecord, TaskState]:
    """Write the record (replaced, lasting), then the task, in one transaction."""
    check_id(namespace, "record namespace")
    check_id(key, f"{namespace} key")
    check_id(task_id, "task id")

    async def work(conn: Conn, events: list[Event]) -> tuple[KeyedRecord, TaskState]:
        current = await read_record(conn, namespace, key, lock=True)
        task = await locked_task(conn, task_id)
        if expected_version is not None:
            actual = task.version if task is not None else 0
            if actual != expected_version:
                raise VersionConflict(
                    f"tasks/{task_id}", expected_version, actual if task else None
                )
        if fencing_token is not None:
            check_fence(task_id, task, fencing_token)
        now = await core.now(conn)
        # An expired record is absent to the version check, but its versions go on.
        expect_version(namespace, key, live(current, now), record_version)
        rules = core.validators
        record = await write_record(
            conn, namespace, key, current, data, None, now, events, rules=rules
        )
        state = await write_task(conn, task_id, task, updates, now, events, rules=rules)
        return record, state

    return await core.atomically(work)
