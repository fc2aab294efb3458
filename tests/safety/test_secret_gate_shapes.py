"""No size limit, more shapes (issue 46): the secret gate (``merge.secret_gate``) and the
worktree scrub (``safety.secret_scrub``) read every file whatever its size, streamed, bounded
by time (a check past its budget fails, never passes); a known secret is found with
whitespace put inside it (wrapped over two lines, base64 at any wrap width), URL-encoded and
JSON-escaped; a wrapped token is masked in what council posts. All on real repositories;
the large files are sparse (zeros written by the file system, not by the test)."""

from __future__ import annotations

import base64
import json
import os
import random
import secrets
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import quote

import pytest

from orchestrator.errors import SecretInHistory, SecretInWork, SecretScanLate, UsageError
from orchestrator.forge import public_text
from orchestrator.merge.queue import MergeQueue
from orchestrator.merge.types import MergeStatus
from orchestrator.safety import secret_mask
from orchestrator.safety.secret_forms import forms
from orchestrator.safety.secret_scrub import LATE, scrub_sync
from orchestrator.safety.secret_stream import BUDGET_VARIABLE, Finder, Hit, first, mask, squeeze
from orchestrator.state import FileStateStore
from orchestrator.worktrees.manager import WorktreeManager
from tests.support.merge_repo import commit_on, git, init_repo
from tests.support.worktree_helpers import make_repo

NAME = "SHAPES_TEST_TOKEN"
MIB = 1024 * 1024


def token() -> str:
    # a '/' and a '"': its URL and JSON forms differ from the value as written
    return f'tok/{secrets.token_hex(12)}"x'


def sparse(path: Path, size: int, tail: bytes = b"") -> None:
    """``size`` bytes of zeros (a hole, written by nobody), then ``tail``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        out.truncate(size)
        out.seek(size)
        out.write(tail)


def commit_file(repo: Path, branch: str, name: str, source: Path) -> str:
    """Commit the file ``source`` as ``name`` on ``branch`` (from ``main``), its bytes
    streamed into git (``hash-object -w <file>``), never held by the test."""
    blob = git(repo, "hash-object", "-w", "--", str(source))
    main = git(repo, "rev-parse", "main")
    env = {"GIT_INDEX_FILE": str(source.parent / f"{source.name}.index")}
    git(repo, "read-tree", main, env=env)
    git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{name}", env=env)
    tree = git(repo, "write-tree", env=env)
    commit = git(repo, "commit-tree", tree, "-p", main, "-m", f"add {name}")
    git(repo, "update-ref", f"refs/heads/{branch}", commit)
    return commit


def blob_tail(repo: Path, spec: str, size: int = 64) -> bytes:
    done = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "blob", spec], capture_output=True, check=True
    )
    return done.stdout[-size:]


# -- no size limit ------------------------------------------------------------------------------


async def test_a_token_at_the_end_of_a_17_mib_committed_file_is_refused_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = token()
    monkeypatch.setenv(NAME, value)
    repo = init_repo(tmp_path / "repo", checked_out=False)
    big = tmp_path / "big.log"
    sparse(big, 17 * MIB, b"\nkey=" + value.encode() + b"\n")
    tip = commit_file(repo, "council/big/1", "logs/big.log", big)
    base = git(repo, "rev-parse", "main")

    with pytest.raises(SecretInHistory) as raised:
        await MergeQueue(repo, "main").merge("s-big", "council/big/1", task_id="big")

    text = str(raised.value)
    assert f"file logs/big.log holds the value of {NAME} at line 2" in text
    assert value not in text and "not checked" not in text
    assert not isinstance(raised.value, SecretScanLate)
    assert git(repo, "rev-parse", "main") == base
    masked_tip = git(repo, "rev-parse", "council/big/1")
    assert masked_tip != tip
    assert blob_tail(repo, f"{masked_tip}:logs/big.log").endswith(b"\nkey=***\n")


async def test_a_clean_large_file_lands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NAME, token())
    repo = init_repo(tmp_path / "repo", checked_out=False)
    big = tmp_path / "big.bin"
    sparse(big, 17 * MIB, b"the end, no secret\n")
    commit_file(repo, "council/clean/1", "big.bin", big)

    merged = await MergeQueue(repo, "main").merge("s-clean", "council/clean/1", task_id="clean")

    assert merged.status is MergeStatus.MERGED


async def test_a_file_not_read_within_the_budget_fails_and_never_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The budget is made tiny: the check runs out of time while reading the large file (or
    before it), fails naming it, and the tip is not taken as clean; with a sane budget the
    very same clean file then lands."""
    monkeypatch.setenv(NAME, token())
    repo = init_repo(tmp_path / "repo", checked_out=False)
    big = tmp_path / "big.bin"
    sparse(big, 17 * MIB, b"no secret\n")
    commit_file(repo, "council/slow/1", "data/big.bin", big)
    base = git(repo, "rev-parse", "main")
    queue = MergeQueue(repo, "main")
    monkeypatch.setenv(BUDGET_VARIABLE, "0.000001")

    with pytest.raises(SecretScanLate) as raised:
        await queue.merge("s-slow", "council/slow/1", task_id="slow")

    text = str(raised.value)
    assert "data/big.bin" in text and "too large to check in time" in text
    assert BUDGET_VARIABLE in text
    assert isinstance(raised.value, SecretInHistory)  # not landed, not retried
    assert git(repo, "rev-parse", "main") == base
    monkeypatch.setenv(BUDGET_VARIABLE, "120")
    merged = await queue.merge("s-slow", "council/slow/1", task_id="slow")
    assert merged.status is MergeStatus.MERGED


@pytest.mark.parametrize("bad", ["0", "-3", "soon", "nan"])
async def test_a_bad_budget_is_refused_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv(NAME, token())
    monkeypatch.setenv(BUDGET_VARIABLE, bad)
    repo = init_repo(tmp_path / "repo", checked_out=False)
    commit_on(repo, "council/b/1", {"ok.txt": "fine\n"})
    with pytest.raises(UsageError, match=f"{BUDGET_VARIABLE} is '{bad}'"):
        await MergeQueue(repo, "main").merge("s-b", "council/b/1", task_id="b")


# -- more shapes ---------------------------------------------------------------------------------


def _split(value: str) -> str:
    return f"key = {value[:11]}\n      {value[11:]}\n"


def _base64_wrapped(value: str) -> str:
    encoded = base64.b64encode(f"user:{value}\n".encode()).decode()
    return "".join(encoded[at : at + 12] + "\n" for at in range(0, len(encoded), 12))


def _url(value: str) -> str:
    return f"https://example.com/cb?token={quote(value, safe='')}&x=1\n"


def _json(value: str) -> str:
    return json.dumps({"auth": {"token": value}}) + "\n"


@pytest.mark.parametrize(
    ("shape", "write", "how"),
    [
        ("split over two lines", _split, ""),
        ("base64 -w 12", _base64_wrapped, " (base64-encoded)"),
        ("url-encoded", _url, " (url-encoded)"),
        ("json-escaped", _json, " (json-encoded)"),
    ],
)
async def test_each_shape_of_a_known_secret_is_refused_and_masked(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    shape: str,
    write: Callable[[str], str],
    how: str,
) -> None:
    value = token()
    monkeypatch.setenv(NAME, value)
    repo = init_repo(tmp_path / "repo", checked_out=False)
    commit_on(repo, "council/shape/1", {"notes/a.txt": "intro\n" + write(value)})
    base = git(repo, "rev-parse", "main")

    with pytest.raises(SecretInHistory) as raised:
        await MergeQueue(repo, "main").merge("s-shape", "council/shape/1", task_id="shape")

    assert f"file notes/a.txt holds the value of {NAME}{how} at line 2" in str(raised.value), shape
    assert value not in str(raised.value)
    assert git(repo, "rev-parse", "main") == base
    masked = blob_tail(repo, "council/shape/1:notes/a.txt", 4096)
    flat = squeeze(masked)
    assert [f.needle for f in forms(value) if squeeze(f.needle) in flat] == []
    assert masked.count(b"\n") == ("intro\n" + write(value)).count("\n")  # lines kept


async def test_a_wrapped_token_in_a_commit_message_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = token()
    monkeypatch.setenv(NAME, value)
    repo = init_repo(tmp_path / "repo", checked_out=False)
    commit_on(repo, "council/msg/1", {"a.txt": "a\n"}, message=f"use\n{_split(value)}")
    with pytest.raises(SecretInHistory) as raised:
        await MergeQueue(repo, "main").merge("s-msg", "council/msg/1", task_id="msg")
    assert f"message holds the value of {NAME}" in str(raised.value)
    assert squeeze(value.encode()) not in squeeze(
        git(repo, "log", "-1", "--format=%B", "council/msg/1").encode()
    )


def test_a_value_with_whitespace_inside_is_found_across_any_chunks_at_its_line() -> None:
    """``Finder`` fed the same bytes cut anywhere (chunks of 1 to 40 bytes) finds the value
    however whitespace was put in it, at the line its first byte is on; seeded, so the same
    cases every run."""
    rng = random.Random(46)
    for case in range(400):
        value = b"tok-" + bytes(rng.choice(b"abcdef0123456789") for _ in range(rng.randint(4, 30)))
        before = bytes(rng.choice(b"xy \n\t") for _ in range(rng.randint(0, 200)))
        written = bytearray()
        for byte in value:
            written.append(byte)
            if rng.random() < 0.1:
                written += rng.choice([b"\n", b"  ", b"\r\n", b"\n    "])
        data = before + bytes(written) + b" tail\n"
        finder = Finder([value, b"zzz-never-there"])
        at = 0
        while at < len(data):
            size = rng.randint(1, 40)
            finder.feed(data[at : at + size])
            at += size
        assert finder.hit == Hit(0, before.count(b"\n") + 1), (case, data)
        assert mask(data, [value]).count(b"\n") == data.count(b"\n")
        assert squeeze(value) not in squeeze(mask(data, [value]))


def test_first_says_what_a_finder_fed_the_bytes_whole_says() -> None:
    """``first`` (one look at bytes held whole, no tail kept) gives the very hit a ``Finder``
    fed the same bytes gives: the earliest needle, the first given of two at one place, its
    line; none when absent, for empty bytes or no needles; seeded cases, some with hits."""
    rng = random.Random(51)
    for case in range(600):
        needles = [
            b"k" + bytes(rng.choice(b"ab01 \n") for _ in range(rng.randint(1, 12)))
            for _ in range(rng.randint(0, 4))
        ]
        needles = [n for n in needles if squeeze(n)]
        data = bytes(rng.choice(b"ab01k \n\t") for _ in range(rng.randint(0, 120)))
        if needles and rng.random() < 0.5:
            at = rng.randint(0, len(data))
            data = data[:at] + rng.choice(needles) + data[at:]
        finder = Finder(needles)
        assert first(data, needles) == finder.feed(data), (case, data, needles)
    assert first(b"", [b"abc"]) is None and first(b"abc", []) is None
    with pytest.raises(ValueError, match="needle 1 of 2 is empty"):
        first(b"abc", [b"abc", b" \n"])


def test_mask_keeps_the_line_breaks_inside_a_wrapped_value() -> None:
    value = b"tok-0123456789abcdef"
    data = b"a\nkey: tok-01234\n  56789abc\ndef end\n"
    assert mask(data, [value]) == b"a\nkey: ***\n\n end\n"
    assert mask(b"nothing here\n", [value]) == b"nothing here\n"


# -- the worktree scrub: uncommitted files -------------------------------------------------------


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[WorktreeManager]:
    repo = make_repo(tmp_path / "repo")
    async with FileStateStore.for_repo(repo) as store:
        yield WorktreeManager(repo, store=store)


async def test_a_65_mib_uncommitted_file_is_scrubbed_before_it_is_committed(
    manager: WorktreeManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = token()
    monkeypatch.setenv(NAME, value)
    session = await manager.create_session_worktree("s1", "claude", "big")
    big = session.path / "out" / "dump.bin"
    sparse(big, 65 * MIB, b"\n" + value[:9].encode() + b"\n" + value[9:].encode() + b"\n")

    with pytest.raises(SecretInWork) as raised:
        await manager.commit_in_worktree(session, "council: big build (round 1)")

    assert f"out/dump.bin ({NAME})" in str(raised.value)
    assert value not in str(raised.value)
    with big.open("rb") as data:
        data.seek(65 * MIB)
        assert data.read() == b"\n***\n\n"
    assert big.stat().st_size == 65 * MIB + 6
    committed = blob_tail(session.path, f"{session.branch}:out/dump.bin", 16)
    assert committed.endswith(b"\n***\n\n")


def test_a_scrub_past_its_budget_names_the_files_not_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = token()
    monkeypatch.setenv(NAME, value)
    sparse(tmp_path / "big.bin", 17 * MIB, value.encode())
    (tmp_path / "small.txt").write_text(value)

    changed = scrub_sync(tmp_path, ["big.bin", "small.txt"], budget=1e-9)

    assert changed == [f"big.bin ({LATE})", f"small.txt ({LATE})"]
    assert scrub_sync(tmp_path, ["small.txt"]) == [f"small.txt ({NAME})"]
    assert (tmp_path / "small.txt").read_text() == "***"


def test_a_scrub_reads_only_regular_files_and_never_waits_on_a_fifo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FIFO or a link among the changed paths (a CLI's, or a file swapped for one) is not
    read: opening a FIFO with no writer would hold the commit forever."""
    value = token()
    monkeypatch.setenv(NAME, value)
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "real.txt").write_text(value)
    (tmp_path / "link.txt").symlink_to(tmp_path / "real.txt")

    assert scrub_sync(tmp_path, ["pipe", "link.txt", "real.txt"]) == [f"real.txt ({NAME})"]
    assert (tmp_path / "real.txt").read_text() == "***"


# -- what council posts --------------------------------------------------------------------------


def test_a_wrapped_token_is_masked_in_what_council_posts(monkeypatch: pytest.MonkeyPatch) -> None:
    value = token()
    monkeypatch.setenv(NAME, value)
    wrapped = f"the key was {value[:13]}\n{value[13:]} and more"
    said = public_text.own(wrapped)
    shown = public_text.output("line 1\n" + wrapped + "\nlast line\n")
    encoded = public_text.output(_base64_wrapped(value))
    for text in (said, shown, encoded):
        flat = squeeze(text.encode())
        assert [f.needle for f in forms(value) if squeeze(f.needle) in flat] == [], text
    assert "***" in said and "***" in shown
    assert "last line" in shown and secret_mask.unwrapped("plain words") == "plain words"
