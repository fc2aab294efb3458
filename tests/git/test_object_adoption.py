"""Taking a CLI's own object store into the repository's (``orchestrator.git.objects``): by
content, never by the names the CLI gave, and never through a link it planted. Real git on
real stores; each trick is what a confined CLI can do to the directory it may write."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from orchestrator.git.objects import adopt_objects, private_store
from orchestrator.git.repo import Git


def git(repo: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    (repo / "a.txt").write_text("main's history\n")
    git(repo, "add", "a.txt")
    git(repo, "-c", "user.name=u", "-c", "user.email=u@x", "commit", "-q", "-m", "first")
    git(repo, "repack", "-a", "-d", "-q")  # main's history in one pack
    git(repo, "hash-object", "-w", "--stdin", stdin="a loose object\n")
    return repo


def snapshot(store: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(store)): path.read_bytes()
        for path in store.rglob("*")
        if path.is_file() and not path.is_symlink()
    }


def whole(repo: Path) -> None:
    fsck = subprocess.run(["git", "-C", str(repo), "fsck", "--full"], capture_output=True)
    assert fsck.returncode == 0, fsck.stderr
    git(repo, "rev-parse", "main^{tree}")


def cli_store(repo: Path, tmp_path: Path) -> Path:
    private = tmp_path / "own-objects"
    private_store(private, repo / ".git" / "objects")
    return private


def cli_blob(repo: Path, private: Path, text: str) -> str:
    return git(repo, "hash-object", "-w", "--stdin", stdin=text,
               env={"GIT_OBJECT_DIRECTORY": str(private)})  # fmt: skip


def test_a_pack_named_like_the_repositorys_enters_under_its_own_name(
    repo: Path, tmp_path: Path
) -> None:
    shared = repo / ".git" / "objects"
    before = snapshot(shared)
    (theirs,) = (shared / "pack").glob("*.pack")
    private = cli_store(repo, tmp_path)
    blob = cli_blob(repo, private, "the CLI's blob\n")
    (private / "pack").mkdir()
    made = git(repo, "pack-objects", str(private / "pack" / "made"), stdin=blob + "\n",
               env={"GIT_OBJECT_DIRECTORY": str(private)})  # fmt: skip
    for suffix in (".pack", ".idx"):
        os.replace(
            private / "pack" / f"made-{made}{suffix}", private / "pack" / (theirs.stem + suffix)
        )

    adopted = adopt_objects(private, shared, Git(repo, None))

    assert adopted.packs == 1 and not adopted.refused
    for name, data in before.items():  # nothing of the repository's replaced
        assert (shared / name).read_bytes() == data, name
    assert (shared / "pack" / f"pack-{made}.pack").is_file()  # under its content's name
    assert git(repo, "cat-file", "-p", blob) == "the CLI's blob"
    whole(repo)
    assert sorted(os.listdir(private)) == ["info"]


@pytest.mark.parametrize("where", ["pack", "fanout", "store"])
def test_a_link_in_the_clis_store_is_never_followed(repo: Path, tmp_path: Path, where: str) -> None:
    shared = repo / ".git" / "objects"
    before = snapshot(shared)
    private = cli_store(repo, tmp_path)
    if where == "pack":
        os.symlink(shared / "pack", private / "pack")
    elif where == "fanout":
        for fanout in (p.name for p in shared.iterdir() if len(p.name) == 2):
            os.symlink(shared / fanout, private / fanout)
    else:
        moved = tmp_path / "was-own"
        os.rename(private, moved)
        os.symlink(shared, private)

    adopt_objects(private, shared, Git(repo, None))

    assert snapshot(shared) == before  # every object and pack of the repository's still there
    whole(repo)
    assert os.path.isdir(shared / "pack")


def test_a_link_under_the_index_name_is_not_written_through(repo: Path, tmp_path: Path) -> None:
    shared = repo / ".git" / "objects"
    (theirs,) = (shared / "pack").glob("*.idx")
    before = theirs.read_bytes()
    private = cli_store(repo, tmp_path)
    blob = cli_blob(repo, private, "another blob\n")
    (private / "pack").mkdir()
    made = git(repo, "pack-objects", str(private / "pack" / "x"), stdin=blob + "\n",
               env={"GIT_OBJECT_DIRECTORY": str(private)})  # fmt: skip
    os.symlink(theirs, private / "pack" / f"x-{made}.council-idx")

    adopt_objects(private, shared, Git(repo, None))

    assert theirs.read_bytes() == before
    assert git(repo, "cat-file", "-p", blob) == "another blob"
    whole(repo)


def test_a_loose_object_that_is_not_what_its_name_says_is_dropped(
    repo: Path, tmp_path: Path
) -> None:
    shared = repo / ".git" / "objects"
    private = cli_store(repo, tmp_path)
    honest = cli_blob(repo, private, "honest\n")
    liar = private / honest[:2] / ("0" * 38)
    liar.write_bytes((private / honest[:2] / honest[2:]).read_bytes())

    adopted = adopt_objects(private, shared, Git(repo, None))

    assert adopted.objects == 1 and len(adopted.refused) == 1
    assert (shared / honest[:2] / honest[2:]).is_file()
    assert not (shared / honest[:2] / ("0" * 38)).exists()
    whole(repo)
