"""Commands run on a session's work (``sandbox.commands``): their plan
(``plan.command_confinement``: an allow-list of the user's HOME, not a deny-list), a real run of
one in bubblewrap as the test's user and, as root, as a spare unprivileged one (a toolchain
under the user's HOME runs, the logins beside it stay out of reach, HOME is the session's
private one, the machine's loopback does not answer), and the credential shapes its output is
masked for (``safety.secret_shapes``)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.safety.secret_shapes import masked, shapes_found
from orchestrator.sandbox import network
from orchestrator.sandbox.plan import GitReach, SandboxSettings, command_confinement
from tests.support.spare_user import as_users, hand_over


def layout(root: Path) -> tuple[GitReach, Path, Path, Path]:
    """A repository's places, a session's worktree and private command HOME, and a user's HOME
    with toolchains and logins in it."""
    repo = root / "repo"
    council = repo / ".council"
    worktree = council / "worktrees" / "s1"
    home = council / "command-homes" / "s1"
    admin = repo / ".git" / "worktrees" / "s1"
    for directory in (worktree, home, admin):
        directory.mkdir(parents=True)
    (worktree / ".git").write_text(f"gitdir: {admin}\n")
    reach = GitReach(repo, council, (admin,), (worktree / ".git",))
    user = root / "user"
    tool = user / ".cargo" / "bin" / "tool"
    tool.parent.mkdir(parents=True)
    tool.write_text("#!/bin/sh\necho tool ran\n")
    tool.chmod(0o755)
    (user / ".cargo" / "credentials.toml").write_text('[registry]\ntoken = "cioSecret"\n')
    node = user / ".nvm" / "versions" / "node" / "v22" / "bin"
    node.mkdir(parents=True)
    (user / ".nvm" / "nvm.sh").write_text("# nvm\n")
    pipx = user / ".local" / "pipx" / "venvs" / "black" / "bin"
    pipx.mkdir(parents=True)
    (user / ".local" / "bin").mkdir()
    (user / ".local" / "share" / "keyrings").mkdir(parents=True)
    (user / ".local" / "share" / "keyrings" / "login.keyring").write_text("keyring\n")
    (user / ".config" / "gh").mkdir(parents=True)
    (user / ".config" / "gh" / "hosts.yml").write_text("oauth_token: gho_secret\n")
    (user / ".config" / "tool.toml").write_text("setting = 1\n")
    (user / ".cache").mkdir()
    (user / ".pgpass").write_text("db:5432:app:alice:PgSecret1\n")
    return reach, worktree, home, user


def test_a_commands_plan_shows_the_toolchains_of_the_users_home_and_nothing_else(
    tmp_path: Path,
) -> None:
    reach, worktree, home, user = layout(tmp_path)
    path = [
        user / ".cargo" / "bin",
        user / ".nvm" / "versions" / "node" / "v22" / "bin",
        user / ".local" / "pipx" / "venvs" / "black" / "bin",
        user / ".local" / "bin",
    ]
    settings = SandboxSettings("bubblewrap", "/usr/bin/bwrap", read=(user / ".config",))
    plan = command_confinement(
        settings,
        reach,
        workdir=worktree,
        home=home,
        argv=["tool"],
        env={"PATH": ":".join([*map(str, path), "/usr/bin", "/bin"])},
        user_home=str(user),
    )
    kinds = {path: kind for kind, path in plan.ordered}
    assert kinds[user] == "hide" and kinds[reach.council_dir] == "hide"
    assert kinds[worktree] == "write" and kinds[home] == "write"  # its own HOME, not the user's
    assert kinds[user / ".cargo" / "bin"] == "read"  # the bin directory...
    assert user / ".cargo" not in kinds  # ...never ~/.cargo, whose credentials.toml sits beside
    assert kinds[user / ".nvm"] == "read"  # a version manager, whole
    assert kinds[user / ".local" / "pipx" / "venvs" / "black"] == "read"  # a bin's prefix
    assert kinds[user / ".local" / "bin"] == "read"
    assert user / ".local" not in kinds and user / ".local" / "share" not in kinds
    assert user / ".cache" not in kinds  # nothing of the user's is writable
    # A path shown on purpose (``read:``) keeps its logins hidden from a command.
    assert kinds[user / ".config"] == "read" and kinds[user / ".config" / "gh"] == "secret"
    assert user / ".pgpass" not in kinds  # under the hidden HOME: no mount needed
    assert plan.executable == str(user / ".cargo" / "bin" / "tool")


@pytest.mark.parametrize(("network", "only_model", "reaches"), [
    (True, False, True), (True, True, False), (False, False, False),
])  # fmt: skip
def test_a_command_under_network_model_gets_no_network(
    tmp_path: Path, network: bool, only_model: bool, reaches: bool
) -> None:
    """``network: model``'s way out is the proxy its CLI's launch serves: a verify or setup
    command, which has no model to reach, gets no network at all (``--unshare-net``)."""
    reach, worktree, home, user = layout(tmp_path)
    settings = SandboxSettings("bubblewrap", "/usr/bin/bwrap", network, only_model=only_model)
    plan = command_confinement(
        settings, reach, workdir=worktree, home=home, argv=["true"],
        env={"PATH": "/usr/bin:/bin"}, user_home=str(user),
    )  # fmt: skip
    assert plan.network is reaches


@pytest.fixture
def place_root() -> Iterator[Path]:
    """A directory of its own outside /tmp, which the sandbox hides: what hides the user's
    HOME here is the HOME's own rule."""
    base = Path(tempfile.mkdtemp(prefix="council-commands-", dir="/var/tmp"))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


# Runs ``sh -c <probe>`` through ``run_confined`` in the layout under argv[1], with the user's
# HOME argv[2], bwrap argv[4] and the network helper argv[5]; prints the result as JSON.
_RUN = """
import json, sys
from pathlib import Path
import anyio
from orchestrator.sandbox.commands import CommandPlace, run_confined
from orchestrator.sandbox.plan import GitReach, Sandbox, SandboxSettings

root, user, probe = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
repo = root / "repo"
worktree = repo / ".council" / "worktrees" / "s1"
admin = repo / ".git" / "worktrees" / "s1"
reach = GitReach(repo, repo / ".council", (admin,), (worktree / ".git",))
settings = SandboxSettings("bubblewrap", sys.argv[4], uplink=sys.argv[5] or None)
place = CommandPlace(worktree, repo / ".council" / "command-homes" / "s1", Sandbox(settings, reach))
done = anyio.run(lambda: run_confined(place, ["sh", "-c", probe], timeout=30))
print(json.dumps({"code": done.returncode, "output": done.output}))
"""
_PROBE = """
tool
echo "HOME=$HOME XDG_CACHE_HOME=$XDG_CACHE_HOME"
cat {user}/.cargo/credentials.toml || echo "no credentials"
cat {user}/.pgpass || echo "no pgpass"
ls {user}/.local/share || echo "no share"
echo x > {user}/.cache/x || echo "no user cache"
echo x > "$XDG_CACHE_HOME/x" && echo "own cache"
python3 -c "import socket; socket.create_connection(('127.0.0.1', {port}), 3)" \
  && echo "loopback reached" || echo "no loopback"
"""


@pytest.mark.sandbox
@pytest.mark.parametrize("uid", as_users())
def test_a_command_runs_its_toolchain_but_reaches_none_of_the_users_logins(
    place_root: Path, uid: int | None
) -> None:
    """Its HOME is the session's, the user's logins beside its toolchain are out of reach, and
    its open network is a namespace of its own: the machine's loopback does not answer."""
    assert network.problem() is None, network.problem()
    _, _, home, user = layout(place_root)
    become: list[str] = []
    if uid is not None:
        hand_over(place_root, uid)
        become = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    binary = shutil.which("bwrap")
    assert binary is not None
    env = {
        "PATH": f"{user / '.cargo' / 'bin'}:/usr/bin:/bin",
        "HOME": str(user),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
    }
    loopback = socket.create_server(("127.0.0.1", 0))
    probe = _PROBE.format(user=user, port=loopback.getsockname()[1])
    try:
        done = subprocess.run(
            [*become, sys.executable, "-c", _RUN, str(place_root), str(user), probe, binary,
             network.find() or ""],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
    finally:
        loopback.close()
    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)["output"]
    assert "tool ran" in output  # the toolchain under the user's HOME runs
    assert f"HOME={home} XDG_CACHE_HOME={home}/.cache" in output
    assert "no credentials" in output and "cioSecret" not in output
    assert "no pgpass" in output and "PgSecret1" not in output
    assert "no share" in output and "keyrings" not in output
    assert "no user cache" in output and not (user / ".cache" / "x").exists()
    assert "own cache" in output and (home / ".cache" / "x").read_text() == "x\n"
    assert "no loopback" in output and "loopback reached" not in output


PLANTED = {
    "pgpass": ("db.internal:5432:prod:alice:Pg7Secret!", "Pg7Secret!"),
    "vault": ("hvs.CAESIJ2a8b7c6d5e4f3a2b1c0d9e8f7a6", "hvs.CAESIJ2a8b7c6d5e4f3a2b1c0d9e8f7a6"),
    "legacy vault": ("s.AbCdEfGhIjKlMnOpQrStUvWx", "s.AbCdEfGhIjKlMnOpQrStUvWx"),
    "aws id": ("aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    "aws secret": ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG+bPx", "wJalrXUtnFEMI/K7MDENG"),
    "github": ("export GITHUB_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdef"),
    "github pat": ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopq", "github_pat_11"),
    "jwt": ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3", "eyJzdWIiOiIx"),
    "netrc": ("machine api.internal login bob password N3trcPw", "N3trcPw"),
    "netrc alone": ("  password N3trcAlone", "N3trcAlone"),
    "url": ("index-url = https://alice:P1pPass@pypi.internal/simple", "P1pPass"),
    "assignment": ('token = "cioAbCdEfGhIjKlMnOpQrStUvWxYz012345"', "cioAbCdEf"),
    "json": ('{"auth": "ZG9ja2VyOnBhc3N3b3Jk"}', "ZG9ja2VyOnBhc3N3b3Jk"),
    "rclone": ("pass = s3cr3t-rclone-pass", "s3cr3t-rclone-pass"),
    "camel": ('apiKey: "k3yvalue123"', "k3yvalue123"),
    "flag": ("mysql --password=Secret123 -u root", "Secret123"),
    "bearer": ('curl -H "Authorization: Bearer abc.def.ghi12345678"', "abc.def.ghi"),
    "anthropic": ("sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "sk-ant-api03"),
}


@pytest.mark.parametrize("case", sorted(PLANTED))
def test_a_credential_nobody_named_is_masked_by_its_shape(case: str) -> None:
    line, secret = PLANTED[case]
    assert shapes_found(line)
    assert secret not in masked(f"before\n{line}\nafter"), case
    assert "***" in masked(line)


def test_a_private_key_block_is_masked_whole_even_when_cut() -> None:
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5v\n"
    whole = f"read:\n{key}-----END OPENSSH PRIVATE KEY-----\ndone\n"
    assert masked(whole) == "read:\n***\ndone\n"
    assert masked(f"read:\n{key}") == "read:\n***"  # the output ends inside it
    cut = "b3BlbnNzaC1rZXktdjEAAAAABG5v\nAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
    assert masked(f"{cut}-----END RSA PRIVATE KEY-----\nok") == "***\nok"  # its BEGIN cut off


@pytest.mark.parametrize(
    "line",
    [
        "tests/test_auth.py::test_login PASSED",
        "auth.py:10: error: Incompatible types",
        "commit 8a32ee9f1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e",
        "GIT_AUTHOR_NAME=CLI Council",
        "PATH=/usr/bin:/bin",
        "x.py:12:5: E501 line too long",
        "token_ttl: 3600",
        "token=${TOKEN}",
        "DATABASE_PASSWORD=***",
        "compass=north123",
        "refused: read ~/.vault-token: FileNotFoundError",
        "passthrough_env = yes",
    ],
)
def test_ordinary_output_is_left_as_it_is(line: str) -> None:
    assert masked(line) == line
