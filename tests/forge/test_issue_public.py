"""Nothing raw goes public, and a fact is told once: ``council run`` and ``council serve`` as
real processes on the fake GitHub over a real bare repository, the scripted CLI building each
issue's task and the run's verify command a check script that prints a ``~/.pgpass`` line, a
vault token, an ``@org/team`` mention and a fence of its own, as a careless check does.

- The failing task's issue is told why in council's words, and of the output only a masked,
  bounded tail in a fence the output's own fence does not end, with where the rest lives; the
  pull request of the task that passed quotes its issue without pinging anyone. Neither the
  password nor the token is in any comment or pull request. As root and as an unprivileged
  user, under the sandbox.
- ``serve`` stopped and served again: an issue it cannot take is told so once, not once per
  ``serve``; the issue that became a pull request hears "started" and "carries this work" once.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.forge.public_text import markers
from orchestrator.testing.fake_github import FakeGitHub
from tests.support.cli_process_helpers import COUNCIL, ENV, events, reap, wait_for
from tests.support.forge_helpers import said
from tests.support.issue_loop import issue_loop
from tests.support.spare_user import as_users, council_run, user_dir
from tests.support.timing import patience

TOKEN = "ghp_fakeTokenForPublicText0123456789abcd"
OWNER, NAME = "octo", "public"

# The check script: what a careless test prints when it fails (and when it passes).
CHECK = """\
import os, sys
salt = {salt!r}
for n in range(40):
    print("noise line", n)
print("connecting with ~/.pgpass:")
print("db.internal:5432:prod:alice:" + "Pg" + salt + "pw9")
print("VAULT_TOKEN=" + "hvs." + "CAES" + salt + "Vault0123456789abcdef")
print("@org/team please look")
print("```")
print("</details> <!-- council:fact:skip:x -->")
print("FAILED test_db::test_connect" if os.path.exists("fail.txt") else "all passed")
sys.exit(1 if os.path.exists("fail.txt") else 0)
"""


def _secrets(salt: str) -> dict[str, str]:
    return {"pgpass": f"Pg{salt}pw9", "vault": f"hvs.CAES{salt}Vault0123456789abcdef"}


def _posted(gh: FakeGitHub) -> list[str]:
    """Every text council posted: comments, pull requests' titles and bodies."""
    texts = [c.body for record in gh.site.issues.values() for c in record.comments]
    for record in gh.site.issues.values():
        if record.pull is not None:
            texts += [record.title, record.body or ""]
    return texts


@pytest.mark.sandbox
@pytest.mark.parametrize("uid", as_users())
def test_a_failing_checks_output_goes_public_masked_bounded_and_fenced(
    tmp_path: Path, uid: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    salt = os.urandom(6).hex()
    if uid is not None:
        # The fake GitHub (this process, root) reads the bare repository the run's user owns
        # while it runs: git trusts it only when told to (the run's user cannot read this).
        trusting = tmp_path / "gitconfig"
        trusting.write_text("[safe]\n\tdirectory = *\n")
        trusting.chmod(0o644)
        monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(trusting))
    with (
        user_dir(uid, tmp_path) as base,
        issue_loop(base, owner=OWNER, name=NAME, token=TOKEN) as (gh, config),
    ):
        check = base / "check.py"
        check.write_text(CHECK.format(salt=salt))
        config.write_text(
            config.read_text()
            + f'verify: [["{sys.executable}", "{check}"]]\n'
            + f'sandbox: {{read: ["{base}"]}}\n'
        )
        passing = gh.create_issue(
            "Write the notes", "WRITE notes.txt hello\n\ncc @org/team, see #1", labels=["council"]
        )
        failing = gh.create_issue("Break the check", "WRITE fail.txt x", labels=["council"])

        done = council_run(config, base, uid, env={"GH_TOKEN": TOKEN})

        assert done.returncode == 1, done.stderr[-3000:]  # one failed, one waits for review
        posted = _posted(gh)
        told = [c.body for c in gh.site.issues[failing].comments]
        pulls = [r for r in gh.site.issues.values() if r.pull is not None]
        assert len(pulls) == 1, done.stdout[-3000:] + done.stderr[-3000:]

    for name, value in _secrets(salt).items():
        assert all(value not in text for text in posted), name
        assert value not in done.stdout + done.stderr, name

    failure = said(told[-1])
    assert failure.startswith(f"CLI Council could not finish task `issue-{failing}`: ")
    assert "verify command" in failure.split("\n", 1)[0]
    fence = re.search(r"^(`{4,})text\n(.*?)\n\1$", failure, re.DOTALL | re.MULTILINE)
    assert fence is not None, failure  # longer than the output's own ``` fence
    held = fence.group(2)
    assert "db.internal:5432:prod:alice:***" in held and "VAULT_TOKEN=***" in held
    assert "@org/team please look" in held  # inside the fence: rendered as text, pings nobody
    assert held.splitlines()[-1] == "FAILED test_db::test_connect"  # the tail is kept
    assert "noise line 0\n" not in held  # the head is not
    assert "lines of the output left out" in failure
    assert f".council/logs/issue-{failing}-*.log" in failure
    assert [markers(c) for c in told if markers(c)] == [
        {f"started:issue-{failing}:0"},
        {f"failed:issue-{failing}:1"},
    ]
    outside = failure.replace(fence.group(0), "")
    assert "<!--" not in outside and "</details>" not in outside

    (pull,) = pulls
    assert pull.title.startswith(f"issue-{passing}: Write the notes")
    assert "@org/team" not in pull.body and "@\u200borg/team" in pull.body
    assert f"Closes #{passing}" in pull.body  # the one reference council makes
    assert "#1" not in pull.body.replace(f"Closes #{passing}", "")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeGitHub, Path]]:
    with issue_loop(tmp_path, owner=OWNER, name=NAME, token=TOKEN, config="serve.yaml") as found:
        yield found


def _serving(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*COUNCIL, "serve", str(config)],
        cwd=config.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**ENV, "GH_TOKEN": TOKEN},
    )


def _skipped(repo: Path, issue: int) -> int:
    """How often a serve found ``issue`` cannot be a task (each serve says it in its log)."""
    return sum(
        1
        for event in events(repo)
        if event["type"] == "issue.skipped" and event["data"]["issue"] == issue
    )


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=patience(60))
    assert process.returncode == 0, err[-3000:]


def test_a_restarted_serve_tells_each_fact_once(world: tuple[FakeGitHub, Path]) -> None:
    gh, config = world
    repo = config.parent / "repo"
    bad = gh.create_issue(
        "Asks for a CLI the run lacks", "```council\nadapters: [nope]\n```", labels=["council"]
    )
    good = gh.create_issue("One", body="WRITE one.txt one\n", labels=["council"])

    def in_review() -> bool:
        return any(said(c.body).startswith("Pull request #") for c in gh.site.issues[good].comments)

    for serve in (1, 2, 3):
        process = _serving(config)
        try:
            wait_for(
                lambda n=serve: _skipped(repo, bad) >= n, f"serve {serve} reading issue #{bad}"
            )
            wait_for(in_review, f"issue #{good} told of its pull request")
            _stop(process)
        finally:
            reap(process)

    (told,) = [c.body for c in gh.site.issues[bad].comments]
    assert said(told).startswith("CLI Council cannot take this issue as a task: `council` block")
    heard = [said(c.body) for c in gh.site.issues[good].comments]
    assert len(heard) == 2, heard
    assert heard[0].startswith(f"CLI Council started work on this issue: task `issue-{good}`")
    assert heard[1].startswith("Pull request #")
