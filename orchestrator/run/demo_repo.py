"""The offline demo's sample repository: a tiny Python package, created on first use.

A run config with ``sample_repo: true`` names a ``repo`` that may not exist yet; the first run
creates it there (a git repository on the config's base branch with one commit) so the demo
needs nothing but this checkout.

The repository is built aside, in a sibling directory named ``.<name>.sample-build-<pid>-*``
holding a build mark, and renamed into place only once its commit exists: a kill at any step
leaves either no repository or a whole one, never a half-made one that every later run would
refuse. A build directory left by a killed build (its mark names a process that is gone) is
removed by the next build. A half-made repository left by an older version, which built in
place, is recognised (no commit yet, and every file in it is one of the sample's, byte for
byte) and rebuilt. Any other existing directory is never touched: if it is not the sample,
that is an error, not something to fix.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from enum import StrEnum
from pathlib import Path

import anyio.to_thread

from orchestrator.errors import WorkspaceError
from orchestrator.git.repo import Git
from orchestrator.safety.crashpoints import crash_point

__all__ = ["SAMPLE_FILES", "SampleState", "ensure_sample_repo", "sample_state"]

SAMPLE_FILES: dict[str, str] = {
    "README.md": "# textkit\n\nSmall text helpers, grown by CLI Council's offline demo.\n",
    "textkit/__init__.py": '"""Small text helpers."""\n\nfrom textkit.words import words\n\n'
    '__all__ = ["words"]\n',
    "textkit/words.py": '"""Splitting text into words."""\n\n\n'
    "def words(text: str) -> list[str]:\n"
    '    """The whitespace-separated words of ``text``."""\n'
    "    return text.split()\n",
    "tests/__init__.py": "",
    "tests/test_words.py": "import unittest\n\nfrom textkit import words\n\n\n"
    "class WordsTest(unittest.TestCase):\n"
    "    def test_split(self) -> None:\n"
    '        self.assertEqual(words("a b  c"), ["a", "b", "c"])\n',
    ".gitignore": "__pycache__/\n",
}

_IDENTITY = {
    "GIT_AUTHOR_NAME": "CLI Council",
    "GIT_AUTHOR_EMAIL": "council@localhost",
    "GIT_COMMITTER_NAME": "CLI Council",
    "GIT_COMMITTER_EMAIL": "council@localhost",
}


_BUILD_MARK = ".council-sample-build"  # at the top of a build directory, names its builder
_OWN_DIRS = (".git", ".council")  # what a sample repository holds besides its files


class SampleState(StrEnum):
    ABSENT = "absent"
    COMPLETE = "complete"  # a repository with the base branch
    HALF_MADE = "half_made"  # an older build killed in place: the sample's files, no commit
    FOREIGN = "foreign"  # anything else: never touched


def sample_state(path: Path, base_branch: str = "main") -> SampleState:
    """What is at ``path`` (blocking: run it in a worker thread)."""
    if not os.path.lexists(path):
        return SampleState.ABSENT
    if path.is_symlink() or not path.is_dir():
        return SampleState.FOREIGN
    git = Git(path, None)
    # -C alone would find an enclosing repository (the demo's repo sits inside this
    # checkout), so the directory must be a repository's top level itself.
    top = git.run_sync("rev-parse", "--show-toplevel", check=False)
    if top.ok and os.path.samefile(top.out, path):
        branch = git.run_sync(
            "rev-parse", "--verify", "--quiet", f"refs/heads/{base_branch}^{{commit}}", check=False
        )
        if branch.ok:
            return SampleState.COMPLETE
    return SampleState.HALF_MADE if _only_sample_files(path) else SampleState.FOREIGN


async def ensure_sample_repo(path: Path, base_branch: str = "main") -> bool:
    """Create the sample repository at ``path`` unless it exists; True when it was created."""
    state = await anyio.to_thread.run_sync(sample_state, path, base_branch)
    if state == SampleState.COMPLETE:
        return False
    if state == SampleState.FOREIGN:
        raise WorkspaceError(
            f"{path} exists but has no branch {base_branch!r}: it is not the demo's sample "
            "repository (remove it to let the demo create one, or point repo elsewhere)"
        )
    await anyio.to_thread.run_sync(_remove_dead_builds, path)
    build = Path(await anyio.to_thread.run_sync(_new_build_dir, path))
    try:
        await anyio.to_thread.run_sync(_write_files, build)
        git = Git(build, build / ".council" / "git-hooks", _IDENTITY)
        await git.run("init", "-q", "-b", base_branch)
        await git.run("add", "-A", "--", ".", f":(exclude){_BUILD_MARK}")
        crash_point("sample.half_made")
        await git.run("commit", "-q", "--no-gpg-sign", "-m", "textkit: the sample project")
        return await anyio.to_thread.run_sync(_move_into_place, build, path, state)
    finally:
        await anyio.to_thread.run_sync(_remove_build, build)


def _new_build_dir(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    build = tempfile.mkdtemp(prefix=f".{path.name}.sample-build-{os.getpid()}-", dir=path.parent)
    os.chmod(build, 0o755)  # noqa: S103 (a checkout, readable like any other)
    Path(build, _BUILD_MARK).write_text(f"{os.getpid()}\n", encoding="utf-8")
    return build


def _move_into_place(build: Path, path: Path, state: SampleState) -> bool:
    """Rename the finished build to ``path``; False when another process got there first."""
    (build / _BUILD_MARK).unlink()
    if state == SampleState.HALF_MADE and sample_state(path) == SampleState.HALF_MADE:
        # Moved aside first, so a kill between the two renames leaves no half-made repository.
        aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.sample-old-", dir=path.parent))
        os.rename(path, aside / "repo")
        shutil.rmtree(aside)
    try:
        os.rename(build, path)  # atomic; onto an empty directory too, never onto a full one
    except OSError:
        if sample_state(path) != SampleState.COMPLETE:
            raise
        return False  # a concurrent first run built it: theirs is as good as ours
    return True


def _remove_build(build: Path) -> None:
    if build.exists():
        shutil.rmtree(build, ignore_errors=True)


def _remove_dead_builds(path: Path) -> None:
    """Remove build directories of ``path`` whose builder is gone (killed mid-build)."""
    with contextlib.suppress(FileNotFoundError):
        for entry in path.parent.iterdir():
            if not entry.name.startswith(
                (f".{path.name}.sample-build-", f".{path.name}.sample-old-")
            ):
                continue
            mark = entry / _BUILD_MARK
            if entry.name.startswith(f".{path.name}.sample-old-") or _dead(mark):
                shutil.rmtree(entry, ignore_errors=True)


def _dead(mark: Path) -> bool:
    try:
        pid = int(mark.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return False  # no readable mark: not provably one of ours
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _only_sample_files(path: Path) -> bool:
    """Does ``path`` hold some of the sample's files, unchanged, and nothing else? (An empty
    directory is not provably the demo's.)"""
    seen = 0
    for directory, names, files in os.walk(path):
        here = Path(directory)
        if here == path:
            names[:] = [n for n in names if n not in _OWN_DIRS]
        for name in files:
            relative = (here / name).relative_to(path).as_posix()
            expected = SAMPLE_FILES.get(relative)
            if expected is None or (here / name).is_symlink():
                return False
            if (here / name).read_text(encoding="utf-8", errors="replace") != expected:
                return False
            seen += 1
    return seen > 0


def _write_files(root: Path) -> None:
    for relative, content in SAMPLE_FILES.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
