"""A CLI that wants to push to a team's remote reached through a URL has nothing to push with:
the real orchestrator, a real CLI process (``fault_clis/cred_probe.py``), real git.

The user has a credential store (``~/.git-credentials``, named by ``~/.gitconfig`` and, to be
sure, by the repository's own config), an ssh key and an ssh agent. The CLI asks git for the
remote's credential, looks for the agent and reads the files. Under the sandbox it finds none
of them (its HOME is private, the user's HOME and the agent's socket directory are hidden, the
agent's variable is not passed on), as root and as an unprivileged user; without one, the
repository's config leads git to the user's store, which is what the sandbox is for.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from tests.support.fault_helpers import FaultRun
from tests.support.spare_user import council_run, place, spare_uid

URL = "https://git.example.com/team/project.git"


def user_with_logins(tmp_path: Path) -> tuple[Path, Path, socket.socket]:
    home = tmp_path / "user-home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY\n")
    store = home / ".git-credentials"
    store.write_text("https://someone:s3cret-token@git.example.com\n")
    (home / ".gitconfig").write_text(f"[credential]\n\thelper = store --file={store}\n")
    agent_dir = tmp_path / "ssh-agent.x1"
    agent_dir.mkdir()
    agent = agent_dir / "agent.1"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(agent))
    listener.listen()
    return home, agent, listener


@pytest.mark.parametrize(
    ("sandbox", "who"),
    [
        pytest.param("bubblewrap", "root", marks=pytest.mark.sandbox),
        pytest.param("bubblewrap", "user", marks=pytest.mark.sandbox),
        ("none", "root"),
    ],
)
def test_a_cli_finds_no_credential_to_push_with(sandbox: str, who: str) -> None:
    uid = spare_uid() if who == "user" else None
    with place(who) as root:
        probe(root, sandbox, uid)


def probe(root: Path, sandbox: str, uid: int | None) -> None:
    home, agent, listener = user_with_logins(root)
    run = FaultRun(
        root,
        "cred_probe.py",
        env={"FAULT_URL": URL, "FAULT_USER_HOME": str(home), "FAULT_AGENT": str(agent)},
        sandbox=sandbox,
    )
    store = home / ".git-credentials"
    subprocess.run(["git", "-C", str(run.repo), "remote", "add", "origin", URL], check=True)
    subprocess.run(
        ["git", "-C", str(run.repo), "config", "credential.helper", f"store --file={store}"],
        check=True,
    )
    try:
        env = {"HOME": str(home), "SSH_AUTH_SOCK": str(agent)}
        finished = council_run(run.config_path, root, uid, env)
    finally:
        listener.close()

    assert finished.returncode == 0, finished.stderr[-2000:]
    shown = subprocess.run(
        ["git", "-C", str(run.repo), "show", "main:creds.json"], capture_output=True, text=True
    )
    found = json.loads(shown.stdout)
    assert not found["ssh_agent_env"]  # the agent's variable is never passed to a CLI
    if sandbox == "none":  # nothing hides the user's files: the repository's helper finds one
        assert found["credential"] and found[".git-credentials"] and found["ssh_agent_socket"]
        return
    assert found == {
        "credential": False,
        "credential_error": found["credential_error"],
        "ssh_agent_env": False,
        "ssh_agent_socket": False,
        ".git-credentials": False,
        ".ssh/id_ed25519": False,
        ".gitconfig": False,
    }
    assert "terminal prompts disabled" in found["credential_error"]
    assert b"s3cret-token" not in b"".join(path.read_bytes() for path in run.files())
