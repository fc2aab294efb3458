"""No secret lands (``merge.secret_gate``): every commit a branch would bring (the CLI's own as
well as the orchestrator's) is searched for each secret the run knows, in its message, author,
committer, path names and file contents, as is and encoded; a hit refuses the landing, naming
where and the secret's name (never its value), and leaves the work masked in every ref that
held it, with no git object keeping the value. All on real repositories."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import threading
from pathlib import Path
from urllib.parse import quote

import pytest

from orchestrator.errors import SecretInHistory
from orchestrator.git.merge_tree import GitCalls
from orchestrator.git.publish import publish_branch
from orchestrator.git.repo import Git
from orchestrator.merge import secret_scan
from orchestrator.merge.queue import MergeQueue
from orchestrator.merge.types import MergeStatus
from orchestrator.safety import secret_mask
from orchestrator.safety.secret_forms import forms
from tests.support.merge_repo import commit_on, git, init_repo
from tests.support.remote_repo import make_team, plain_git

NAME = "GATE_TEST_TOKEN"


def token() -> str:
    return f"tok-{secrets.token_hex(12)}"


def encodings(value: str) -> list[bytes]:
    """What a test looks for: the value and each encoding a CLI could have written."""
    raw = value.encode()
    return [raw, quote(value, safe="").encode(), raw.hex().encode(), *_b64(raw)]


def _b64(raw: bytes) -> list[bytes]:
    return [base64.b64encode(p + raw)[4 if p else 0 : 16] for p in (b"", b"a", b"ab")]


def everywhere(repo: Path) -> bytes:
    """Every object (loose or packed, reachable or not), every ref's log, every file under
    ``.git`` and ``.council``: one blob of bytes to search."""
    objects = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "--batch-all-objects", "--batch"],
        capture_output=True,
        check=True,
    ).stdout
    log = subprocess.run(
        ["git", "-C", str(repo), "log", "--all", "-p", "--format=%H %an %ae %cn %ce %B"],
        capture_output=True,
        check=True,
    ).stdout
    files = b"".join(
        path.read_bytes() + path.name.encode()
        for top in (repo / ".git", repo / ".council")
        if top.exists()
        for path in top.rglob("*")
        if path.is_file() and not path.is_symlink()
    )
    return objects + log + files


# -- the encodings ----------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", [b"", b"x", b"xy", b"key=", b"\x00\x01"])
@pytest.mark.parametrize("suffix", [b"", b"!", b"\n\n"])
def test_base64_is_found_at_every_alignment(prefix: bytes, suffix: bytes) -> None:
    value = "sk-Ab9/+xyzQRS12345"
    data = prefix + value.encode() + suffix
    needles = [f.needle for f in forms(value)]
    assert any(n in base64.b64encode(data) for n in needles)
    assert any(n in base64.urlsafe_b64encode(data) for n in needles)


def test_url_and_hex_forms_are_found_in_either_case() -> None:
    value = "p@ss/w0rd+x y"
    needles = {f.needle: f.encoding for f in forms(value)}
    for written in (
        quote(value, safe="").encode(),
        quote(value, safe="").lower().encode(),
        value.encode().hex().encode(),
        value.encode().hex().upper().encode(),
    ):
        assert any(n in b"a=" + written + b"&b" for n in needles), written
    assert needles[value.encode()] == "plain"
    assert set(needles.values()) >= {"plain", "url", "hex", "base64"}


def test_a_value_that_encodes_to_itself_has_one_form() -> None:
    value = "abcdEFGH1234"
    assert [f.needle for f in forms(value) if f.encoding == "url"] == []
    assert len({f.needle for f in forms(value)}) == len(forms(value))


def test_secrets_are_known_by_their_names(monkeypatch: pytest.MonkeyPatch) -> None:
    from_env, given = token(), token()
    monkeypatch.setenv(NAME, from_env)
    secret_mask.remember_named({"adapters.codex.env.MY_TOKEN": given})
    names = secret_mask.names()
    assert names[from_env] == NAME
    assert names[given] == "adapters.codex.env.MY_TOKEN"
    assert {from_env, given} <= secret_mask.known()


# -- the gate on real repositories --------------------------------------------------------------


def cli_commits(repo: Path, branch: str, value: str) -> None:
    """What a CLI committing on its own branch could do with the value it was given."""
    encoded = base64.b64encode(f"user:{value}".encode()).decode()
    commit_on(repo, branch, {"config.json": f'{{"key": "{value}"}}\n'}, message="add config")
    commit_on(repo, branch, {f"keys/{value}.txt": "nothing here\n"}, message="a path")
    commit_on(repo, branch, {"notes.md": "notes\n"}, message=f"use key {value} for the API")
    commit_on(repo, branch, {"docker.cfg": f"auth={encoded}\n"}, message="docker")


async def test_a_branch_holding_a_secret_is_refused_and_kept_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = token()
    monkeypatch.setenv(NAME, value)
    repo = init_repo(tmp_path / "repo", checked_out=False)
    cli_commits(repo, "council/leak/1", value)
    tip = git(repo, "rev-parse", "council/leak/1")
    git(repo, "update-ref", "refs/council/tampered/1/heads/council/leak/1", tip)
    git(repo, "update-ref", "refs/council/rescue/leak-1", f"{tip}~1")
    commit_on(repo, "council/clean/1", {"clean.txt": "fine\n"})
    base = git(repo, "rev-parse", "main")
    queue = MergeQueue(repo, "main")

    with pytest.raises(SecretInHistory) as raised:
        await queue.merge("s-leak", "council/leak/1", task_id="leak")

    text = str(raised.value)
    assert value not in text
    assert NAME in text
    assert "file config.json" in text
    assert "path name keys/***.txt" in text
    assert "message" in text and "commit " in text
    assert "file docker.cfg holds the value of GATE_TEST_TOKEN (base64-encoded)" in text
    assert raised.value.masked
    assert git(repo, "rev-parse", "main") == base
    # The work is kept, masked, in every ref that held it.
    masked_tip = git(repo, "rev-parse", "council/leak/1")
    assert masked_tip != tip
    assert git(repo, "show", f"{masked_tip}:config.json") == '{"key": "***"}'
    assert git(repo, "ls-tree", "--name-only", f"{masked_tip}:keys") == "***.txt"
    assert "use key *** for the API" in git(repo, "log", "--format=%B", masked_tip)
    assert git(repo, "rev-parse", "refs/council/tampered/1/heads/council/leak/1") == masked_tip
    assert git(repo, "rev-parse", "refs/council/rescue/leak-1") == git(
        repo, "rev-parse", f"{masked_tip}~1"
    )
    assert git(repo, "cat-file", "-t", tip, check=False) == ""  # its loose object is gone
    found = everywhere(repo)
    assert [form for form in encodings(value) if form in found] == []
    # The sibling lands as ever.
    landed = await queue.merge("s-clean", "council/clean/1", task_id="clean")
    assert landed.status is MergeStatus.MERGED


async def test_author_and_committer_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = token()
    secret_mask.remember_named({"adapters.aider.env.AIDER_TOKEN": value})
    repo = init_repo(tmp_path / "repo", checked_out=True)
    git(repo, "switch", "-q", "-c", "council/who/1")
    (repo / "a.txt").write_text("a\n")
    git(repo, "add", "a.txt")
    git(
        repo,
        "commit",
        "-q",
        "-m",
        "plain message",
        env={"GIT_AUTHOR_EMAIL": f"{value}@example.com", "GIT_COMMITTER_NAME": value},
    )
    git(repo, "switch", "-q", "--detach", "main")
    queue = MergeQueue(repo, "main")

    with pytest.raises(SecretInHistory) as raised:
        await queue.merge("s-who", "council/who/1", task_id="who")

    text = str(raised.value)
    assert "author holds the value of adapters.aider.env.AIDER_TOKEN" in text
    assert "committer holds the value of adapters.aider.env.AIDER_TOKEN" in text
    assert value not in text
    assert git(repo, "log", "-1", "--format=%ae %cn", "council/who/1") == "***@example.com ***"
    assert [form for form in encodings(value) if form in everywhere(repo)] == []


async def test_a_checked_out_session_branch_is_reset_to_its_masked_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = token()
    monkeypatch.setenv(NAME, value)
    repo = init_repo(tmp_path / "repo", checked_out=True)
    worktree = repo / ".council" / "worktrees" / "s-wt"
    git(repo, "worktree", "add", "-q", "-b", "council/wt/1", str(worktree), "main")
    (worktree / "leak.txt").write_text(f"key={value}\n")
    git(worktree, "add", "leak.txt")
    git(worktree, "commit", "-q", "-m", f"commit with {value}")
    queue = MergeQueue(repo, "main")

    with pytest.raises(SecretInHistory):
        await queue.merge("s-wt", "council/wt/1", task_id="wt")

    assert (worktree / "leak.txt").read_text() == "key=***\n"
    assert git(worktree, "status", "--porcelain") == ""
    assert [form for form in encodings(value) if form in everywhere(repo)] == []


async def test_a_clean_branch_lands_with_secrets_known(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(NAME, token())
    repo = init_repo(tmp_path / "repo", checked_out=False)
    commit_on(repo, "council/ok/1", {"ok.txt": "fine\n"})
    merged = await MergeQueue(repo, "main").merge("s-ok", "council/ok/1", task_id="ok")
    assert merged.status is MergeStatus.MERGED


async def test_a_landing_through_a_remote_is_checked_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = token()
    monkeypatch.setenv(NAME, value)
    team = make_team(tmp_path)
    clone = team.clone("ws1")
    commit_on(clone, "council/leak/1", {"out.txt": f"{value}\n"}, start="origin/main")
    before = team.tip()
    queue = MergeQueue(clone, "main", remote="origin")

    with pytest.raises(SecretInHistory) as raised:
        await queue.merge("s-leak", "council/leak/1", task_id="leak")

    assert "file out.txt holds the value of GATE_TEST_TOKEN" in str(raised.value)
    assert team.tip() == before
    assert value.encode() not in everywhere(clone)
    pushed = subprocess.run(
        ["git", "-C", str(team.remote), "cat-file", "--batch-all-objects", "--batch"],
        capture_output=True,
        check=True,
    ).stdout
    assert value.encode() not in pushed


async def test_with_a_secret_known_a_landing_reads_its_objects_once(tmp_path: Path) -> None:
    """One git process more per landing (rev-list: the branch's objects are loose, read from
    their files, no ``cat-file``); a tip found clean is not read again (a merge retried
    after the base moved)."""
    repo = init_repo(tmp_path / "repo", checked_out=False)
    for name in ("a", "b"):
        commit_on(repo, name, {f"{name}.txt": name})
    known = {token(): NAME}
    quiet = MergeQueue(repo, "main", secrets=dict)
    gated = MergeQueue(repo, "main", secrets=lambda: known)
    first = await quiet.merge("s1", "a", task_id="a")
    second = await gated.merge("s1", "b", task_id="b")
    assert first.status is second.status is MergeStatus.MERGED
    assert second.git_calls == first.git_calls + 1  # rev-list
    again = await gated.merge("s1", "b", task_id="b")
    assert again.status is MergeStatus.ALREADY_MERGED
    assert again.git_calls < second.git_calls


@pytest.mark.parametrize("packed", ["none", "some", "all"])
async def test_packed_objects_are_read_by_cat_file_and_found_alike(
    tmp_path: Path, packed: str
) -> None:
    """Objects that are not loose (a repack, a fetch) are read by ``cat-file`` as before, beside
    the loose ones read from their files: the same findings, named the same, whichever way."""
    repo = init_repo(tmp_path / "repo", checked_out=False)
    value = token()
    big = "x" * (secret_scan.CHUNK + 17) + value + "\n"
    commit_on(repo, "council/p/1", {"old.txt": f"key={value}\n", "big.txt": big})
    if packed != "none":
        git(repo, "repack", "-a", "-d", "-q")
        git(repo, "prune-packed")
    if packed != "all":
        commit_on(repo, "council/p/1", {"new.txt": f"again {value}\n"}, message=f"m {value}")
    calls = GitCalls(Git(repo, None))
    tip = git(repo, "rev-parse", "council/p/1")
    needles = secret_scan.needles_for({value: NAME})
    found = secret_scan.scan(calls, [tip], ["main"], needles, common=repo / ".git")
    plain = secret_scan.scan(GitCalls(Git(repo, None)), [tip], ["main"], needles)
    assert sorted(f.describe() for f in found.findings) == sorted(
        f.describe() for f in plain.findings
    )
    described = " ".join(f.describe() for f in found.findings)
    assert "file old.txt" in described and "file big.txt" in described
    assert ("file new.txt" in described) is (packed != "all")
    assert found.kinds == plain.kinds and found.contents == plain.contents
    # rev-list, and cat-file only where some object is not loose.
    assert calls.count == (1 if packed == "none" else 2)


def test_a_loose_object_that_is_not_what_its_name_says_is_left_to_git(tmp_path: Path) -> None:
    """A file planted at a packed object's loose path (by whatever could write the object
    store) with other bytes: git reads the pack, and so does the gate. A loose object is read
    from its file only when its bytes hash to its name; otherwise ``cat-file`` reads it, so a
    decoy never hides what the landing really brings."""
    import hashlib
    import zlib

    repo = init_repo(tmp_path / "repo", checked_out=False)
    value = token()
    commit_on(repo, "council/d/1", {"key.txt": f"key={value}\n"})
    git(repo, "repack", "-a", "-d", "-q")
    git(repo, "prune-packed")
    blob = git(repo, "rev-parse", "council/d/1:key.txt")
    decoy = b"nothing to see\n"
    loose = repo / ".git" / "objects" / blob[:2] / blob[2:]
    loose.parent.mkdir(exist_ok=True)
    loose.write_bytes(zlib.compress(b"blob %d\0" % len(decoy) + decoy))
    assert hashlib.sha1(b"blob %d\0" % len(decoy) + decoy).hexdigest() != blob
    calls = GitCalls(Git(repo, None))
    tip = git(repo, "rev-parse", "council/d/1")
    needles = secret_scan.needles_for({value: NAME})
    found = secret_scan.scan(calls, [tip], ["main"], needles, common=repo / ".git")
    assert [f.describe() for f in found.findings] != []
    assert "file key.txt" in " ".join(f.describe() for f in found.findings)
    assert decoy not in found.contents.values()


async def test_hex_and_url_forms_are_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    value = f"p/w+{secrets.token_hex(8)}"
    repo = init_repo(tmp_path / "repo", checked_out=False)
    commit_on(
        repo,
        "council/enc/1",
        {
            "dump.txt": f"bytes: {value.encode().hex()}\n",
            "url.txt": f"https://x/?k={quote(value, safe='')}\n",
        },
    )
    queue = MergeQueue(repo, "main", secrets=lambda: {value: "adapters.x.env.K_TOKEN"})

    with pytest.raises(SecretInHistory) as raised:
        await queue.merge("s-enc", "council/enc/1", task_id="enc")

    text = str(raised.value)
    assert "file dump.txt holds the value of adapters.x.env.K_TOKEN (hex-encoded)" in text
    assert "file url.txt holds the value of adapters.x.env.K_TOKEN (url-encoded)" in text
    assert value.encode().hex().encode() not in everywhere(repo)


async def test_work_published_for_takeover_is_published_again_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = token()
    monkeypatch.setenv(NAME, value)
    team = make_team(tmp_path)
    clone = team.clone("ws1")
    commit_on(clone, "council/pub/1", {"out.txt": f"{value}\n"}, start="origin/main")
    git_ = plain_git(clone)
    published = await publish_branch(git_, "origin", "council/pub/1")
    remote_ref = "refs/council/branches/council/pub/1"
    assert git(team.remote, "rev-parse", remote_ref) == published

    with pytest.raises(SecretInHistory):
        await MergeQueue(clone, "main", remote="origin").merge(
            "s-pub", "council/pub/1", task_id="pub"
        )

    masked_tip = git(clone, "rev-parse", "council/pub/1")
    assert masked_tip != published
    assert git(team.remote, "rev-parse", remote_ref) == masked_tip
    assert git(team.remote, "show", f"{remote_ref}:out.txt") == "***"
    record = "refs/council/published/origin/branches/council/pub/1"
    assert git(clone, "rev-parse", record) == masked_tip
    assert value.encode() not in everywhere(clone)
    # The next publication leases on the masked tip, as on any other.
    assert await publish_branch(git_, "origin", "council/pub/1") == masked_tip


async def test_a_secret_is_masked_while_a_running_cli_has_committed_into_its_own_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sandboxed CLI's new objects stay in its own store (``.council/objects/<worktree>``)
    until it exits, while its branch already points at them: masking another branch's secret
    then looks past that branch's commit ("bad object" made the landing a failure of the
    orchestrator, retried), and leaves alone what only that commit uses."""
    value = token()
    monkeypatch.setenv(NAME, value)
    repo = init_repo(tmp_path / "repo", checked_out=False)
    cli_commits(repo, "council/leak/1", value)
    shared = repo / ".git" / "objects"
    private = repo / ".council" / "objects" / "wt-sibling"
    private.mkdir(parents=True)
    # The running sibling's commit: its blob and tree and the commit itself in its own store.
    own = {"GIT_OBJECT_DIRECTORY": str(private), "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(shared)}
    blob = _fed(repo, own, "sibling's work\n", "hash-object", "-w", "--stdin")
    tree = _fed(repo, own, f"100644 blob {blob}\twork.txt\n", "mktree")
    main = git(repo, "rev-parse", "main")
    commit = git(repo, "commit-tree", tree, "-p", main, "-m", "sibling", env=own)
    git(repo, "update-ref", "refs/heads/council/sibling/1", commit, env=own)
    assert git(repo, "cat-file", "-t", commit, check=False) == ""  # not in the shared store

    with pytest.raises(SecretInHistory) as raised:
        await MergeQueue(repo, "main").merge("s-leak", "council/leak/1", task_id="leak")

    assert raised.value.masked
    assert git(repo, "show", "council/sibling/1:work.txt", env=own) == "sibling's work"


async def test_a_secret_is_deleted_while_a_sibling_worktree_is_being_added(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``git worktree add`` writes the new worktree's HEAD as zeros until its checkout names
    the commit: git then cannot list what is still used ("bad object worktrees/<name>/HEAD").
    The listing waits that moment out, and the objects that held the value are deleted."""
    value = token()
    monkeypatch.setenv(NAME, value)
    repo = init_repo(tmp_path / "repo", checked_out=False)
    cli_commits(repo, "council/leak/1", value)
    tip = git(repo, "rev-parse", "council/leak/1")
    commit_on(repo, "council/sibling/1", {"work.txt": "sibling's work\n"})
    git(repo, "worktree", "add", str(tmp_path / "sibling"), "council/sibling/1")
    head = repo / ".git" / "worktrees" / "sibling" / "HEAD"
    named = head.read_text()
    head.write_text("0" * 40 + "\n")  # as git worktree add leaves it, mid-way
    timer = threading.Timer(0.3, head.write_text, [named])
    timer.start()
    try:
        with pytest.raises(SecretInHistory) as raised:
            await MergeQueue(repo, "main").merge("s-leak", "council/leak/1", task_id="leak")
    finally:
        timer.join()

    assert raised.value.masked
    assert git(repo, "cat-file", "-t", tip, check=False) == ""  # its loose object is gone
    assert git(repo, "show", "council/sibling/1:work.txt") == "sibling's work"


def _fed(repo: Path, env: dict[str, str], data: str, *args: str) -> str:
    """``git args`` in ``repo`` with ``data`` on its stdin."""
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        input=data,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    )
    return done.stdout.strip()


def test_a_blob_is_read_in_chunks_and_a_value_across_two_is_found_at_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A blob is streamed ``CHUNK`` bytes at a time: a value that starts in one chunk and
    ends in the next is found, named at its nested path and its line; every object is read
    by one ``cat-file``, and nothing of a blob without a secret is kept."""
    value = token()
    monkeypatch.setattr(secret_scan, "CHUNK", 64)
    before = "line\n" * 12 + "x" * 50  # the value starts at byte 110: chunks 64 and 128
    repo = init_repo(tmp_path / "repo", checked_out=False)
    commit_on(
        repo,
        "council/big/1",
        {"deep/er/edge.txt": before + value + "\ntail\n", "deep/clean.bin": "y" * 300},
    )
    calls = GitCalls(Git(repo, None))
    tip = git(repo, "rev-parse", "council/big/1")
    found = secret_scan.scan(
        calls, [tip], [git(repo, "rev-parse", "main")], secret_scan.needles_for({value: NAME})
    )
    assert [f.describe() for f in found.findings] == [
        f"file deep/er/edge.txt holds the value of {NAME} at line 13"
    ]
    assert found.late == [] and found.unread == 0
    assert found.commits == [tip]
    assert calls.count == 2
    clean = git(repo, "rev-parse", "council/big/1:deep/clean.bin")
    assert clean not in found.contents
