"""How the GitHub forge spends requests and survives a bad day: ETag 304s counted apart,
rate limits and server errors waited out within bounds (the waits recorded, never slept),
authentication failures typed, and the token in no error, log or repr."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from orchestrator.errors import ForgeAuthError, ForgeError, ForgeUnavailable
from orchestrator.forge.github import GitHubForge
from orchestrator.safety import secret_mask
from tests.support.forge_helpers import REPO, TOKEN, rig


async def test_an_unchanged_list_is_a_304_counted_apart(tmp_path: Path) -> None:
    with rig(tmp_path) as r:
        r.gh.create_issue("One", labels=["council"])
        first = await r.forge.list_issues(labels=["council"])
        second = await r.forge.list_issues(labels=["council"])
        assert first == second
        assert r.forge.requests().full == 1 and r.forge.requests().not_modified == 1
        assert [(q.status, q.conditional) for q in r.gh.requests] == [(200, False), (304, True)]

        r.gh.create_issue("Two", labels=["council"])  # the list changes: a full answer again
        third = await r.forge.list_issues(labels=["council"])
        assert [issue.title for issue in third] == ["Two", "One"]
        assert r.gh.requests[-1].status == 200 and r.gh.requests[-1].conditional
        count = r.forge.requests()
        assert (count.full, count.not_modified, count.total) == (2, 1, 3)
        assert r.gh.fetched(conditional=True) == 2


@pytest.mark.parametrize("status", [403, 429])
async def test_a_secondary_rate_limit_is_waited_out(tmp_path: Path, status: int) -> None:
    with rig(tmp_path) as r:
        number = r.gh.create_issue("One")
        r.gh.rate_limit_next(2, status=status, retry_after=7)  # type: ignore[arg-type]
        issue = await r.forge.get_issue(number)
        assert issue.title == "One"
        assert r.sleeps.taken == [7.0, 7.0]
        assert [q.status for q in r.gh.requests] == [status, status, 200]
        assert r.forge.requests().retried == 2


async def test_an_exhausted_primary_limit_waits_until_its_reset(tmp_path: Path) -> None:
    with rig(tmp_path) as r:  # the rig's clock says 0
        number = r.gh.create_issue("One")
        r.gh.exhaust_next(1, reset_epoch=30)
        await r.forge.get_issue(number)
        assert r.sleeps.taken == [31.0]


async def test_a_rate_limit_longer_than_the_budget_is_an_error(tmp_path: Path) -> None:
    with rig(tmp_path, rate_budget=10) as r:
        number = r.gh.create_issue("One")
        for _ in range(2):  # the budget is each request's own
            r.gh.rate_limit_next(1, retry_after=7)
            await r.forge.get_issue(number)
        assert r.sleeps.taken == [7.0, 7.0]
        r.gh.rate_limit_next(2, retry_after=6)  # 6 + 6 is past the budget
        with pytest.raises(ForgeUnavailable):
            await r.forge.get_issue(number)
        assert r.sleeps.taken == [7.0, 7.0, 6.0]
        r.sleeps.taken.clear()
        r.gh.rate_limit_next(1, retry_after=3600)
        with pytest.raises(ForgeUnavailable) as caught:
            await r.forge.get_issue(number)
        assert caught.value.status == 403
        assert "secondary rate limit" in str(caught.value)
        assert r.sleeps.taken == []


async def test_server_errors_are_retried_a_bounded_number_of_times(tmp_path: Path) -> None:
    with rig(tmp_path, server_retries=3) as r:
        number = r.gh.create_issue("One")
        r.gh.fail_next(2)
        assert (await r.forge.get_issue(number)).title == "One"
        assert r.sleeps.taken == [1.0, 2.0]

        r.gh.fail_next(10, status=503)
        with pytest.raises(ForgeUnavailable) as caught:
            await r.forge.comment(number, "hello")
        assert caught.value.status == 503
        assert len(r.sleeps.taken) == 2 + 3
        assert r.gh.site.issues[number].comments == []


async def test_a_wrong_token_is_an_auth_error_without_the_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with rig(tmp_path) as r:
        wrong = "ghp_wrongTokenNeverToBeShown42"
        forge = GitHubForge(f"octo/{REPO}", wrong, api_url=r.gh.api_url)
        with pytest.raises(ForgeAuthError) as caught:
            await forge.list_issues()
        assert caught.value.status == 401
        assert "Bad credentials" in str(caught.value)
        shown = [str(caught.value), repr(caught.value), repr(forge), caplog.text]
        assert caught.value.__cause__ is None and caught.value.__context__ is None  # no chain
        assert all(wrong not in text for text in shown)
        assert all(q.authorization == "token ***" for q in r.gh.requests)
        assert secret_mask.names().get(wrong) == "forge.token"


async def test_a_token_without_scope_can_read_but_not_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with rig(tmp_path) as r:
        number = r.gh.create_issue("One")
        reader = "ghp_readOnlyTokenForTests000"
        r.gh.scopeless_token(reader)
        forge = GitHubForge(f"octo/{REPO}", reader, api_url=r.gh.api_url)
        assert (await forge.get_issue(number)).title == "One"
        with pytest.raises(ForgeAuthError) as caught:
            await forge.add_labels(number, ["council:working"])
        assert caught.value.status == 403
        assert "Resource not accessible by integration" in str(caught.value)
        assert reader not in str(caught.value) + caplog.text


async def test_the_token_is_in_no_error_or_log_of_the_happy_path(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with rig(tmp_path) as r:
        r.gh.fail_next(1)
        r.gh.create_issue("One")
        await r.forge.list_issues()
        with pytest.raises(ForgeError) as caught:
            await r.forge.get_issue(42)
        assert TOKEN not in caplog.text + str(caught.value) + repr(r.forge)
        assert TOKEN not in repr(r.gh.requests)


async def test_an_unreachable_forge_is_unavailable_after_retries(tmp_path: Path) -> None:
    with rig(tmp_path, server_retries=2) as r:
        api_url = r.gh.api_url
    # the fake has stopped: nothing listens there any more
    from orchestrator.forge.pacing import Pacing
    from tests.support.forge_helpers import Sleeps

    sleeps = Sleeps()
    pacing = Pacing(server_retries=2, sleep=sleeps)
    forge = GitHubForge(f"octo/{REPO}", TOKEN, api_url=api_url, pacing=pacing)
    with pytest.raises(ForgeUnavailable) as caught:
        await forge.get_issue(1)
    assert caught.value.status is None
    assert sleeps.taken == [1.0, 2.0]


async def test_a_rate_limit_said_only_in_the_message_waits_a_minute(tmp_path: Path) -> None:
    with rig(tmp_path) as r:
        number = r.gh.create_issue("One")
        r.gh.rate_limit_next(1, retry_after=None)
        assert (await r.forge.get_issue(number)).title == "One"
        assert r.sleeps.taken == [60.0]
