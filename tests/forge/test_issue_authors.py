"""Whose issues become tasks (``forge.authors``): an issue's text becomes a CLI's instructions,
so by default only issues opened by people the run trusts (write access, as for reviews:
``forge.trust``) are taken, whatever their labels; an outsider's labelled issue is told once
why, across restarts, and nothing of its text runs. ``forge.authors: anyone`` takes it once a
trusted person put the label on (the outsider's own label, as an issue template puts it, is no
gate).
``council run`` as a real process, the scripted CLI, the fake GitHub."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from orchestrator.testing.fake_github import FakeGitHub
from tests.support.cli_process_helpers import COUNCIL, ENV, events
from tests.support.forge_helpers import OWNER, REPO, TOKEN, said
from tests.support.merge_repo import git
from tests.support.remote_repo import make_team
from tests.support.scheduler_helpers import new_repo
from tests.support.timing import patience

VARIABLE = "FAKE_FORGE_TOKEN"

CONFIG = """\
repo: repo
adapters:
  fast: {{type: scripted, options: {{delay: 0}}}}
default_adapter: fast
workflow: {{phases: [{{name: build}}]}}
retry: {{max_retries: 0, backoff_initial: 0.05, backoff_max: 0.2}}
scheduler: {{tick: 0.05, heartbeat_interval: 0.5, stale_threshold: 5}}
forge:
  repo: {owner}/{name}
  api_url: {api_url}
  token: ${{{variable}}}{authors}
tasks: []
sources:
  - issues: {{labels: [council], poll: 0.2}}
"""


def _run(tmp_path: Path, fake: FakeGitHub, authors: str) -> tuple[int, dict[str, str], str]:
    config = tmp_path / "run.yaml"
    config.write_text(
        CONFIG.format(owner=OWNER, name=REPO, api_url=fake.api_url, variable=VARIABLE,
                      authors=f"\n  authors: {authors}" if authors else "")
    )  # fmt: skip
    done = subprocess.run(
        [*COUNCIL, "run", str(config), "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**ENV, VARIABLE: TOKEN},
        timeout=patience(60),
    )
    report = json.loads(done.stdout) if done.stdout.strip() else {"tasks": []}
    return done.returncode, {t["task_id"]: t["status"] for t in report["tasks"]}, done.stderr


@pytest.mark.parametrize("authors", ["", "anyone"], ids=["default", "anyone"])
def test_an_outsiders_labelled_issue_is_taken_only_when_anyone_is(
    tmp_path: Path, authors: str
) -> None:
    with FakeGitHub(make_team(tmp_path).remote, owner=OWNER, repo=REPO, token=TOKEN) as fake:
        fake.site.set_association("member", "MEMBER")
        repo = new_repo(tmp_path)
        git(repo, "remote", "add", "origin", str(tmp_path / "remote.git"))
        ours = fake.create_issue("Ours", "WRITE ours.txt ours", labels=["council"], author="member")
        theirs = fake.create_issue(
            "Theirs", "WRITE theirs.txt stranger's words", labels=["council"], author="stranger"
        )

        code, statuses, err = _run(tmp_path, fake, authors)

        assert code == 0, err[-2000:]
        if authors == "anyone":
            # The label is the gate then, and the outsider's own (an issue template's) is none.
            assert statuses == {f"issue-{ours}": "done"}
            (told,) = [said(c.body) for c in fake.site.issues[theirs].comments]
            assert "label `council` was put on by stranger, who has no write access" in told
            # A person with write access labels it: taken.
            fake.unlabel(theirs, "council", by="stranger")
            fake.label(theirs, "council", by=OWNER)
            code, statuses, err = _run(tmp_path, fake, authors)
            assert code == 0, err[-2000:]
            assert statuses.get(f"issue-{theirs}") == "done"
            assert git(repo, "show", "main:theirs.txt") == "stranger's words"
            return
        assert statuses == {f"issue-{ours}": "done"}
        assert git(repo, "show", "main:ours.txt") == "ours"
        assert git(repo, "show", "main:theirs.txt", check=False) == ""  # none of its words ran
        (told,) = [said(c.body) for c in fake.site.issues[theirs].comments]
        assert "opened by stranger, who has no write access" in told
        assert "forge.authors" in told
        skipped = [e["data"] for e in events(repo) if e["type"] == "issue.skipped"]
        assert [s["issue"] for s in skipped] == [theirs]
        # Run again (a restart): still not taken, and not told twice.
        code, statuses, err = _run(tmp_path, fake, authors)
        assert code == 0, err[-2000:]
        assert f"issue-{theirs}" not in statuses
        assert len(fake.site.issues[theirs].comments) == 1
