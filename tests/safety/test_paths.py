"""Repository path normalization: one spelling per file, nothing outside the root."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.errors import PathEscapeError
from orchestrator.safety.paths import RepoPaths, ensure_under, normalize_repo_path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with ordinary files and directories, and an outside directory next to it."""
    root = tmp_path / "repo"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "mod.py").write_text("x = 1\n")
    (root / "README.md").write_text("hi\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("no\n")
    return root


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("a/b", "a/b"),
        ("./a//b", "a/b"),
        ("a/b/", "a/b"),
        ("a/./b", "a/b"),
        ("a/../b", "b"),
        ("src/pkg/../pkg/mod.py", "src/pkg/mod.py"),
        ("new/dir/file.py", "new/dir/file.py"),  # need not exist yet
        ("dir\\name.py", "dir\\name.py"),  # a backslash is a file-name character on POSIX
    ],
)
def test_spellings_of_one_path_normalize_alike(repo: Path, spelling: str, expected: str) -> None:
    assert normalize_repo_path(repo, spelling) == expected


def test_absolute_paths_inside_the_repo_become_relative(repo: Path) -> None:
    assert normalize_repo_path(repo, repo / "src" / "pkg" / "mod.py") == "src/pkg/mod.py"
    assert normalize_repo_path(repo, f"{repo}//src/./pkg/") == "src/pkg"
    assert normalize_repo_path(repo, Path("src") / "pkg") == "src/pkg"


def test_a_repo_reached_through_a_symlink_accepts_both_spellings(
    repo: Path, tmp_path: Path
) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(repo)
    assert normalize_repo_path(alias, alias / "README.md") == "README.md"
    assert normalize_repo_path(alias, repo / "README.md") == "README.md"
    assert normalize_repo_path(repo, alias / "README.md") == "README.md"


@pytest.mark.parametrize(
    "spelling",
    ["../outside/secret.txt", "a/../../outside", "..", "/etc/passwd", "src/../../repo2/x"],
)
def test_paths_leaving_the_repo_are_refused(repo: Path, spelling: str) -> None:
    with pytest.raises(PathEscapeError, match="outside"):
        normalize_repo_path(repo, spelling)


@pytest.mark.parametrize("spelling", [".", "./", "src/..", ""])
def test_the_root_itself_is_not_a_path_in_the_repo(repo: Path, spelling: str) -> None:
    with pytest.raises(PathEscapeError):
        normalize_repo_path(repo, spelling)


def test_the_root_spelled_absolute_is_refused_too(repo: Path) -> None:
    with pytest.raises(PathEscapeError, match="root"):
        normalize_repo_path(repo, repo)


def test_a_nul_byte_is_refused(repo: Path) -> None:
    with pytest.raises(PathEscapeError, match="usable"):
        normalize_repo_path(repo, "a\0b")


def test_symlinks_inside_the_repo_resolve_to_their_target(repo: Path) -> None:
    (repo / "link.py").symlink_to("src/pkg/mod.py")
    (repo / "pkglink").symlink_to(repo / "src" / "pkg")
    (repo / "chain").symlink_to("link.py")
    assert normalize_repo_path(repo, "link.py") == "src/pkg/mod.py"
    assert normalize_repo_path(repo, "pkglink/mod.py") == "src/pkg/mod.py"
    assert normalize_repo_path(repo, "pkglink/new.py") == "src/pkg/new.py"
    assert normalize_repo_path(repo, "chain") == "src/pkg/mod.py"
    # ".." applies to where the link points, as the kernel does, not to the link's name.
    assert normalize_repo_path(repo, "pkglink/../top.py") == "src/top.py"


def test_symlinks_pointing_out_of_the_repo_are_refused(repo: Path, tmp_path: Path) -> None:
    (repo / "out_file").symlink_to(tmp_path / "outside" / "secret.txt")
    (repo / "out_dir").symlink_to(tmp_path / "outside")
    (repo / "src" / "up").symlink_to("../..")
    (repo / "dangling_out").symlink_to(tmp_path / "outside" / "missing")
    for spelling in ("out_file", "out_dir/secret.txt", "out_dir/new.txt", "src/up/outside"):
        with pytest.raises(PathEscapeError, match="outside"):
            normalize_repo_path(repo, spelling)
    with pytest.raises(PathEscapeError):
        normalize_repo_path(repo, "dangling_out")


def test_a_symlink_loop_resolves_inside_or_is_refused_never_hangs(repo: Path) -> None:
    (repo / "loop").symlink_to("loop")
    assert normalize_repo_path(repo, "loop/x").startswith("loop")


def test_ensure_under_returns_the_resolved_absolute_path(repo: Path, tmp_path: Path) -> None:
    real = Path(os.path.realpath(repo))
    assert ensure_under(repo, "src/pkg") == real / "src" / "pkg"
    assert ensure_under(repo, repo / "a" / ".." / "b") == real / "b"
    assert ensure_under(repo, ".", allow_root=True) == real
    with pytest.raises(PathEscapeError):
        ensure_under(repo, ".")
    with pytest.raises(PathEscapeError, match="outside"):
        ensure_under(repo, tmp_path / "outside")
    (repo / "escape").symlink_to(tmp_path / "outside")
    with pytest.raises(PathEscapeError, match="outside"):
        ensure_under(repo, "escape/secret.txt")


# -- properties: the normalizer agrees with os.path.realpath on a tree full of symlinks ------


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("tree")
    root = base / "repo"
    (root / "d" / "e").mkdir(parents=True)
    (root / "d" / "e" / "f").write_text("")
    (root / "g").write_text("")
    (base / "out" / "d").mkdir(parents=True)
    (root / "in_dir").symlink_to("d")
    (root / "d" / "in_up").symlink_to("..")
    (root / "in_abs").symlink_to(root / "d" / "e")
    (root / "out_dir").symlink_to(base / "out")
    (root / "d" / "out_rel").symlink_to("../../out/d")
    (root / "dangling").symlink_to("nowhere/deeper")
    yield root


NAMES = ["d", "e", "f", "g", "x", ".", "..", "", "in_dir", "in_up", "in_abs", "out_dir",
         "out_rel", "dangling", "repo", "out"]  # fmt: skip


def reference(root: Path, path: str) -> str | None:
    """What the standard library says: the relative path, or None when it leaves the root."""
    real_root = os.path.realpath(root)
    resolved = os.path.realpath(os.path.join(real_root, path))
    if not resolved.startswith(real_root + os.sep):
        return None
    return os.path.relpath(resolved, real_root)


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(st.sampled_from(NAMES), min_size=1, max_size=7))
def test_normalize_agrees_with_realpath(tree: Path, parts: list[str]) -> None:
    path = "/".join(parts)
    expected = reference(tree, path)
    paths = RepoPaths(tree)
    if expected is None:
        with pytest.raises(PathEscapeError):
            paths.normalize(path)
        return
    got = paths.normalize(path)
    assert got == expected
    assert not got.startswith("/") and not got.endswith("/")
    assert all(part not in ("", ".", "..") for part in got.split("/"))
    assert paths.normalize(got) == got  # idempotent
    assert paths.normalize(os.path.join(tree, path)) == got  # absolute spelling agrees
