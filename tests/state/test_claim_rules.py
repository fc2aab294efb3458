"""The claim rules every backend applies (``state.claim_rules``), checked without a store: which
step an acquire takes, the token it draws, what renewals, releases and the sweep write, which
event each emits and which error refuses what."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.errors import InvalidIdError, RecordNotFound, StaleClaim, StateError
from orchestrator.events import EventType
from orchestrator.events.state import ClaimAcquired, ClaimExpired, ClaimReleased, ClaimRenewed
from orchestrator.models import Claim, ClaimStatus, TaskState
from orchestrator.state.claim_rules import (
    ClaimStep,
    acquisition,
    check_fence,
    check_task_id,
    claim_step,
    existing_task,
    expiry,
    held_claim,
    lapsed,
    release,
    renewal,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _claim(
    holder: str = "alice",
    token: int = 7,
    lease: float = 60,
    status: ClaimStatus = ClaimStatus.ACTIVE,
) -> Claim:
    return Claim(
        task_id="t1",
        holder=holder,
        token=token,
        acquired_at=T0,
        renewed_at=T0,
        expires_at=T0 + timedelta(seconds=lease),
        status=status,
    )


def _task(claim: Claim | None = None, version: int = 3) -> TaskState:
    return TaskState(task_id="t1", version=version, claim=claim)


class _Counter:
    """A token source that records how often it was drawn from."""

    def __init__(self, value: int) -> None:
        self.value = value
        self.draws = 0

    def __call__(self) -> int:
        self.draws += 1
        return self.value


def test_a_free_task_gets_a_new_claim_with_a_drawn_token_and_the_updates() -> None:
    counter = _Counter(40)
    write = acquisition(_task(), "bob", T0, 30, {"status": "running"}, None, counter)
    assert write is not None and write.new and counter.draws == 1
    assert (write.claim.holder, write.claim.token, write.claim.status) == ("bob", 40, "active")
    assert write.claim.acquired_at == write.claim.renewed_at == T0
    assert write.claim.expires_at == T0 + timedelta(seconds=30)
    assert write.fields == {"status": "running", "claim": write.claim}
    event = write.event()
    assert isinstance(event, ClaimAcquired)
    assert (event.task_id, event.holder, event.token) == ("t1", "bob", 40)
    assert event.expires_at == write.claim.expires_at


def test_a_new_token_is_never_below_the_last_claims_token_plus_one() -> None:
    expired = _claim(token=9, status=ClaimStatus.EXPIRED)
    write = acquisition(_task(expired), "bob", T0, 30, None, None, _Counter(2))
    assert write is not None and write.claim.token == 10
    first = acquisition(_task(), "bob", T0, 30, None, None, _Counter(0))
    assert first is not None and first.claim.token == 1


def test_a_live_claim_of_another_holder_refuses_without_drawing_a_token() -> None:
    counter = _Counter(40)
    task = _task(_claim("alice"))
    assert claim_step(task, "bob", T0, None) is ClaimStep.REFUSE
    assert acquisition(task, "bob", T0, 30, {"status": "running"}, None, counter) is None
    assert counter.draws == 0


def test_the_holder_of_a_live_claim_adopts_it_renewed_with_its_token() -> None:
    counter = _Counter(40)
    later = T0 + timedelta(seconds=10)
    task = _task(_claim("alice", token=7))
    assert claim_step(task, "alice", later, None) is ClaimStep.ADOPT
    write = acquisition(task, "alice", later, 90, None, None, counter)
    assert write is not None and not write.new and counter.draws == 0
    assert (write.claim.token, write.claim.acquired_at, write.claim.renewed_at) == (7, T0, later)
    assert write.claim.expires_at == later + timedelta(seconds=90)
    assert isinstance(write.event(), ClaimRenewed)


def test_a_task_written_since_the_caller_read_it_is_refused() -> None:
    task = _task(version=5)
    assert claim_step(task, "bob", T0, expected_version=4) is ClaimStep.REFUSE
    assert claim_step(task, "bob", T0, expected_version=5) is ClaimStep.NEW
    assert acquisition(task, "bob", T0, 30, None, 4, _Counter(1)) is None


def test_a_lapsed_claim_of_another_holder_is_taken_over() -> None:
    task = _task(_claim("alice", token=7, lease=5))
    write = acquisition(task, "bob", T0 + timedelta(seconds=5), 30, None, None, _Counter(3))
    assert write is not None and write.new and write.claim.token == 8
    assert write.claim.holder == "bob"


def test_renewal_moves_the_lease_and_keeps_the_rest() -> None:
    change = renewal(45)
    claim = _claim(token=7)
    later = T0 + timedelta(seconds=20)
    fields = change.fields(claim, later, _task(claim))
    assert list(fields) == ["claim"]
    renewed = fields["claim"]
    assert (renewed.token, renewed.renewed_at, renewed.status) == (7, later, ClaimStatus.ACTIVE)
    assert renewed.expires_at == later + timedelta(seconds=45)
    event = change.event(_task(renewed))
    assert isinstance(event, ClaimRenewed) and event.expires_at == renewed.expires_at


def test_release_sets_status_and_time_and_writes_the_updates() -> None:
    change = release(ClaimStatus.ABANDONED, {"status": "queued"})
    later = T0 + timedelta(seconds=20)
    fields = change.fields(_claim(), later, _task(_claim()))
    released = fields["claim"]
    assert fields["status"] == "queued"
    assert (released.status, released.released_at, released.token) == ("abandoned", later, 7)
    event = change.event(_task(released))
    assert isinstance(event, ClaimReleased) and event.status == "abandoned"


@pytest.mark.parametrize("status", [ClaimStatus.ACTIVE, ClaimStatus.EXPIRED])
def test_a_release_as_anything_but_completed_or_abandoned_is_refused(
    status: ClaimStatus,
) -> None:
    with pytest.raises(StateError, match=f"completed or abandoned, not {status}"):
        release(status, None)


def test_the_fence_passes_only_the_live_token() -> None:
    claim = _claim(token=7)
    assert check_fence("t1", _task(claim), 7) is claim
    with pytest.raises(StaleClaim) as stale:
        check_fence("t1", _task(claim), 6)
    assert (stale.value.record, stale.value.token, stale.value.current) == ("tasks/t1", 6, 7)
    with pytest.raises(StaleClaim):
        check_fence("t1", _task(_claim(token=7, status=ClaimStatus.COMPLETED)), 7)
    with pytest.raises(StaleClaim) as none:
        check_fence("t1", _task(), 7)
    assert none.value.current is None


def test_a_missing_task_and_a_bad_id_are_refused_by_name() -> None:
    with pytest.raises(RecordNotFound, match="task 'ghost' does not exist"):
        existing_task("ghost", None)
    task = _task()
    assert existing_task("t1", task) is task
    with pytest.raises(InvalidIdError, match=r"task id '\.\./x'"):
        check_task_id("../x")
    with pytest.raises(StateError, match="task 't1' was written by a claim write without"):
        held_claim(_task())


def test_the_sweep_expires_only_an_active_claim_past_its_lease() -> None:
    at_expiry = T0 + timedelta(seconds=60)
    assert not lapsed(None, at_expiry)
    assert not lapsed(_claim(), at_expiry - timedelta(microseconds=1))
    assert lapsed(_claim(), at_expiry)
    assert not lapsed(_claim(status=ClaimStatus.COMPLETED), at_expiry)
    assert expiry(None, at_expiry) is None
    assert expiry(_task(), at_expiry) is None
    assert expiry(_task(_claim()), T0) is None  # renewed meanwhile: not lapsed any more
    write = expiry(_task(_claim()), at_expiry)
    assert write is not None and not write.new
    assert write.claim.status == ClaimStatus.EXPIRED and write.fields == {"claim": write.claim}
    event = write.event()
    assert isinstance(event, ClaimExpired) and event.status == "expired"
    assert write.event_type is EventType.CLAIM_EXPIRED


def test_a_release_made_from_the_task_as_found() -> None:
    claim = _claim()
    found = _task(claim).model_copy(update={"attempt": 4})
    change = release(ClaimStatus.COMPLETED, lambda task: {"attempt": task.attempt + 1})
    fields = change.fields(claim, T0, found)
    assert fields["attempt"] == 5 and fields["claim"].status == ClaimStatus.COMPLETED


def test_a_claim_made_from_the_task_as_found_draws_no_token_when_declined() -> None:
    task = _task(None)
    counter = _Counter(3)
    assert acquisition(task, "bob", T0, 30, lambda found: None, None, counter) is None
    write = acquisition(task, "bob", T0, 30, lambda found: {"attempt": 1}, None, counter)
    assert write is not None and write.fields["attempt"] == 1
    assert counter.draws == 1  # the declined try drew no token
