"""``council web`` over plain HTTP: the token, its cookie, the CSRF check, what the page reads
(``orchestrator.web``). The server is the real command, on a real run held open by a gate."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.browser_tier import WebProcess
from tests.support.web_helpers import GatedRun, gated_run, http


@pytest.fixture
def served(tmp_path: Path) -> object:
    with gated_run(tmp_path) as run, WebProcess(run.config) as web:
        yield run, web


def test_every_request_without_the_token_is_refused(served: tuple[GatedRun, WebProcess]) -> None:
    _, web = served
    for path in ("/", "/static/page.js", "/api/view", "/api/task/held", "/events"):
        refused = http(web.base + path)
        assert refused.status == 403, path
        assert "token is needed" in refused.json()["error"]
    wrong = http(f"{web.base}/api/view?token=not-{web.token}")
    assert wrong.status == 403
    assert http(f"{web.base}/api/view", headers={"cookie": "council_web=guess"}).status == 403


def test_the_token_is_exchanged_for_a_strict_cookie_and_leaves_the_address(
    served: tuple[GatedRun, WebProcess],
) -> None:
    _, web = served
    exchanged = http(web.url)
    assert exchanged.status == 303 and exchanged.headers["location"] == "/"
    cookie = exchanged.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert web.token not in cookie
    page = http(web.base + "/", headers={"cookie": cookie.split(";")[0]})
    assert page.status == 200 and b'<meta name="council-csrf"' in page.body
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_an_action_without_the_csrf_value_or_from_another_origin_is_refused_with_it_done(
    served: tuple[GatedRun, WebProcess],
) -> None:
    run, web = served
    cookie = http(web.url).headers["set-cookie"].split(";")[0]
    page = http(web.base + "/", headers={"cookie": cookie}).body.decode()
    csrf = page.split('name="council-csrf" content="')[1].split('"')[0]
    cancel = f"{web.base}/api/task/after/cancel"
    tries = [
        {},  # nothing at all
        {"cookie": cookie},  # the cookie alone: what a forged form would carry
        {"authorization": f"token {web.token}"},
        {"cookie": cookie, "x-council-csrf": csrf, "origin": "http://evil.example"},
    ]
    for headers in tries:
        assert http(cancel, method="POST", headers=headers).status == 403, headers
    assert http(cancel, headers={"cookie": cookie}).status == 405  # an action is a POST
    assert run.status("after") == "queued"  # nothing was done
    done = http(cancel, method="POST", headers={"cookie": cookie, "x-council-csrf": csrf})
    assert done.status == 200, done.body
    assert done.json()["said"] == "cancelled task after"
    assert run.status("after") == "cancelled"
    again = http(cancel, method="POST", headers={"cookie": cookie, "x-council-csrf": csrf})
    assert again.status == 400 and "after" in again.json()["error"]
    unknown = http(
        f"{web.base}/api/task/nobody/cancel",
        method="POST",
        headers={"cookie": cookie, "x-council-csrf": csrf},
    )
    assert unknown.status == 400 and "is not part of session" in unknown.json()["error"]
    retried = http(
        f"{web.base}/api/task/after/retry",
        method="POST",
        headers={"cookie": cookie, "x-council-csrf": csrf},
    )
    assert retried.status == 200, retried.body
    assert retried.json()["said"].startswith("task after queued again")
    assert run.status("after") == "queued"
    run.finish()
    assert (run.status("held"), run.status("after")) == ("done", "done")


def test_the_view_is_filtered_searched_and_cut_on_the_server(
    served: tuple[GatedRun, WebProcess],
) -> None:
    _, web = served
    auth = {"authorization": f"token {web.token}"}
    view = http(f"{web.base}/api/view", headers=auth).json()
    assert view["matched"] == 2 and view["totals"]["tasks"] == 2
    rows = {row["task_id"]: row for row in view["tasks"]}
    assert rows["held"]["status"] == "running" and rows["held"]["phase"] == "build"
    assert rows["after"]["status"] == "queued" and "held" in rows["after"]["waiting"]
    queued = http(f"{web.base}/api/view?status=queued", headers=auth).json()
    assert [row["task_id"] for row in queued["tasks"]] == ["after"]
    searched = http(f"{web.base}/api/view?q=BUILD", headers=auth).json()  # its phase
    assert [row["task_id"] for row in searched["tasks"]] == ["held"]
    window = http(f"{web.base}/api/view?offset=1&limit=1", headers=auth).json()
    assert window["matched"] == 2 and len(window["tasks"]) == 1 and window["offset"] == 1
    bad = http(f"{web.base}/api/view?offset=x", headers=auth)
    assert bad.status == 400 and "whole numbers" in bad.json()["error"]


def test_a_tasks_cli_logs_are_shown_and_an_unknown_task_is_refused(
    served: tuple[GatedRun, WebProcess],
) -> None:
    _, web = served
    auth = {"authorization": f"token {web.token}"}
    shown = http(f"{web.base}/api/task/held", headers=auth).json()
    assert shown["report"]["status"] == "running"
    names = [log["name"] for log in shown["logs"]]
    assert names and names[0].startswith("held-plan-"), names
    assert any("held.txt" in log["text"] for log in shown["logs"])
    # Its build waits at the gate before it writes: the read-only desk's answer for it.
    assert "(task held, cli), branch council/held/1" in shown["diff"], shown["diff"]
    assert shown["diff"].endswith("no changes so far")
    assert http(f"{web.base}/api/task/a%20b", headers=auth).status == 404  # no task id
    assert http(f"{web.base}/api/task/nobody", headers=auth).status == 404
    assert http(f"{web.base}/static/index.html", headers=auth).status == 404


def test_a_resume_is_refused_while_the_run_runs(served: tuple[GatedRun, WebProcess]) -> None:
    _, web = served
    cookie = http(web.url).headers["set-cookie"].split(";")[0]
    page = http(web.base + "/", headers={"cookie": cookie}).body.decode()
    csrf = page.split('name="council-csrf" content="')[1].split('"')[0]
    refused = http(
        f"{web.base}/api/resume", method="POST", headers={"cookie": cookie, "x-council-csrf": csrf}
    )
    assert refused.status == 400
    error = refused.json()["error"]
    assert "is running (process " in error and error.endswith("nothing to resume"), error
