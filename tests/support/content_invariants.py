"""The content-level half of the invariant checker: what the base branch, the user's checkout
and ``.council/`` hold after a run, compared with what the run's CLIs were told to write.

``tests/support/invariants.py`` checks the bookkeeping (no commit lost, no trailer twice, no task
stranded); this module checks the bytes. A run is described by the edits each task's CLI
makes (``Edit``: write a file, append a line, delete a file), which a test reads off its
scripted instructions with ``edits_of``. ``before_run`` photographs the repository first;
``problems`` then lists every broken promise:

- **no base file lost or changed behind the run's back**: every file the base had before the
  run is still there with its bytes, unless a task that landed edits it;
- **every landed edit exactly once**: a landed task's appended line is in its file once (not
  twice: a phase re-run stacked on its own output), a written file holds what the last
  landed writer wrote, a deleted file is gone; a task that did not land left no trace;
- **nothing on the base that no CLI produced**: every commit the run added to the base's
  first-parent history is a merge-queue commit (``Council-Task`` trailer) whose diff touches
  only the paths its task's CLI edits;
- **the user's checkout is theirs**: byte for byte as it was (tracked and untracked files,
  the branch it has checked out), unless it was a clean checkout of the base, which may only
  have been fast-forwarded to the base's new tip;
- **nothing points outside**: no symbolic link under ``.council/`` (worktrees included)
  resolves outside the repository, and every worktree's ``.git`` file names the repository's
  own git directory.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

EditKind = Literal["write", "append", "delete"]


@dataclass(frozen=True)
class Edit:
    """One change a task's CLI makes: ``text`` is the file's whole content (write) or the
    line added (append)."""

    kind: EditKind
    path: str
    text: str = ""


@dataclass(frozen=True)
class Before:
    """The repository as the run found it."""

    base_tip: str
    base_files: dict[str, bytes]
    checkout: dict[str, bytes]  # every file of the user's checkout, tracked or not
    head: str  # what HEAD names: a branch ref, or a commit when detached
    clean: bool  # no tracked change (untracked files do not count, as for the merge queue)


_HEREDOC = re.compile(r"^(WRITE|APPEND) (\S+) <<(\w+)$")


def edits_of(instructions: Iterable[str]) -> list[Edit]:
    """The edits a scripted CLI makes when it follows ``instructions`` (each a prompt's text,
    in the order the phases run): WRITE, APPEND (one line or a heredoc) and DELETE."""
    edits: list[Edit] = []
    for text in instructions:
        lines = iter(text.splitlines())
        for line in lines:
            heredoc = _HEREDOC.match(line.strip())
            if heredoc:
                keyword, path, tag = heredoc.groups()
                body = []
                for inner in lines:
                    if inner.strip() == tag:
                        break
                    body.append(inner)
                content = "\n".join(body) + "\n"
                edits.append(Edit("write" if keyword == "WRITE" else "append", path, content))
                continue
            keyword, _, rest = line.strip().partition(" ")
            path, _, words = rest.partition(" ")
            if keyword == "WRITE":
                edits.append(Edit("write", path, words + "\n"))
            elif keyword == "APPEND":
                edits.append(Edit("append", path, words + "\n"))
            elif keyword == "DELETE":
                edits.append(Edit("delete", path))
    return edits


def before_run(repo: Path, base: str = "main") -> Before:
    head = _git(repo, "symbolic-ref", "-q", "HEAD", check=False).strip()
    status = _git(repo, "status", "--porcelain", "--untracked-files=no")
    return Before(
        base_tip=_git(repo, "rev-parse", base).strip(),
        base_files=_tree(repo, base),
        checkout=_checkout(repo),
        head=head or _git(repo, "rev-parse", "HEAD").strip(),
        clean=not status.strip(),
    )


def problems(
    repo: Path, before: Before, edits: Mapping[str, list[Edit]], *, base: str = "main"
) -> list[str]:
    """Every broken content promise (module doc); ``edits`` maps each task to its edits."""
    landed = _landed(repo, before.base_tip, base)
    found = _foreign_commits(repo, before.base_tip, base, landed, edits)
    now = _tree(repo, base)
    found += _base_files(before, now, landed, edits)
    found += _landed_edits(now, landed, edits)
    found += _checkout_kept(repo, before, now, base)
    found += _links_outside(repo)
    return found


# -- the base ---------------------------------------------------------------------------------


def _landed(repo: Path, since: str, base: str) -> list[tuple[str, str]]:
    """(commit, task) of each landing on the base's first-parent line since ``since``, oldest
    first; task is "" for a commit that carries no ``Council-Task`` trailer."""
    log = _git(
        repo,
        "log",
        "--first-parent",
        "--reverse",
        "--format=%H%x09%(trailers:key=Council-Task,valueonly,separator=%x2C)",
        f"{since}..{base}",
    )
    return [
        (sha, trailer.strip())
        for sha, _, trailer in (line.partition("\t") for line in log.splitlines())
    ]


def _foreign_commits(
    repo: Path,
    since: str,
    base: str,
    landed: list[tuple[str, str]],
    edits: Mapping[str, list[Edit]],
) -> list[str]:
    found = []
    for sha, task in landed:
        if not task:
            found.append(f"commit {sha[:12]} on {base} is no merge-queue commit (no trailer)")
            continue
        if task not in edits:
            found.append(f"commit {sha[:12]} on {base} lands {task!r}, a task of no CLI here")
            continue
        changed = set(_git(repo, "diff", "--name-only", f"{sha}^1", sha).split("\n")) - {""}
        allowed = {edit.path for edit in edits[task]}
        for path in sorted(changed - allowed):
            found.append(
                f"the landing of {task} ({sha[:12]}) changes {path}, which its CLI never edits"
            )
    return found


def _base_files(
    before: Before,
    now: dict[str, bytes],
    landed: list[tuple[str, str]],
    edits: Mapping[str, list[Edit]],
) -> list[str]:
    touched = {edit.path for _, task in landed for edit in edits.get(task, [])}
    found = []
    for path, content in sorted(before.base_files.items()):
        if path in touched:
            continue
        if path not in now:
            found.append(f"{path} was on the base before the run and is gone, edited by no task")
        elif now[path] != content:
            found.append(f"{path} changed on the base, edited by no landed task")
    for path in sorted(set(now) - set(before.base_files) - touched):
        found.append(f"{path} appeared on the base, written by no landed task")
    return found


def _landed_edits(
    now: dict[str, bytes], landed: list[tuple[str, str]], edits: Mapping[str, list[Edit]]
) -> list[str]:
    found = []
    landed_tasks = [task for _, task in landed if task in edits]
    last_writer: dict[str, tuple[str, Edit]] = {}
    for task in landed_tasks:
        for edit in edits[task]:
            if edit.kind in ("write", "delete"):
                last_writer[edit.path] = (task, edit)
    for task, task_edits in sorted(edits.items()):
        for edit in task_edits:
            if edit.kind != "append":
                continue
            text = now.get(edit.path, b"").decode("utf-8", "replace")
            count = text.splitlines(keepends=True).count(edit.text)
            want = 1 if task in landed_tasks else 0
            if count != want:
                found.append(
                    f"{edit.path}: the line {edit.text.strip()!r} of {task} is there {count} "
                    f"times, not {want} ({'landed' if want else 'not landed'})"
                )
    for path, (task, edit) in sorted(last_writer.items()):
        if edit.kind == "delete" and path in now:
            found.append(f"{path} is on the base, but {task} deleted it and landed last")
        elif edit.kind == "write" and not _written(now.get(path), edit.text, task, edits):
            found.append(f"{path} does not hold what {task}, its last landed writer, wrote")
    return found


def _written(content: bytes | None, text: str, task: str, edits: Mapping[str, list[Edit]]) -> bool:
    """Does ``content`` hold ``text`` as written, give or take the same task's appends to it?"""
    if content is None:
        return False
    value = content.decode("utf-8", "replace")
    if value == text:
        return True
    appended = "".join(e.text for e in edits[task] if e.kind == "append")
    return value.startswith(text) and value[len(text) :] in appended


# -- the user's checkout and .council -------------------------------------------------------------


def _checkout_kept(repo: Path, before: Before, now: dict[str, bytes], base: str) -> list[str]:
    after = _checkout(repo)
    head = _git(repo, "symbolic-ref", "-q", "HEAD", check=False).strip()
    head = head or _git(repo, "rev-parse", "HEAD").strip()
    found = [] if head == before.head else [f"HEAD of the checkout moved: {before.head} -> {head}"]
    expected = dict(before.checkout)
    if before.head == f"refs/heads/{base}" and before.clean:
        # A clean checkout of the base may have been fast-forwarded: the tracked files are the
        # base's new tree, untracked files stay as they were.
        for path in before.base_files:
            expected.pop(path, None)
        expected.update(now)
    for path in sorted(set(expected) | set(after)):
        if path not in after:
            found.append(f"{path} is gone from the user's checkout")
        elif path not in expected:
            found.append(f"{path} appeared in the user's checkout")
        elif after[path] != expected[path]:
            found.append(f"{path} changed in the user's checkout")
    return found


def _links_outside(repo: Path) -> list[str]:
    root = repo.resolve()
    git_dir = Path(_git(repo, "rev-parse", "--absolute-git-dir").strip()).resolve()
    found = []
    for directory, names, files in os.walk(repo / ".council"):
        for name in names + files:
            path = Path(directory, name)
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                found.append(f"{path.relative_to(repo)} links outside the repository")
            elif name == ".git" and path.is_file():
                target = path.read_text(errors="replace").removeprefix("gitdir:").strip()
                if not Path(directory, target).resolve().is_relative_to(git_dir):
                    found.append(f"{path.relative_to(repo)} points at {target}")
    return found


# -- git ------------------------------------------------------------------------------------------


def _git(repo: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {done.stderr.decode(errors='replace')}")
    return done.stdout.decode("utf-8", "replace")


def _tree(repo: Path, ref: str) -> dict[str, bytes]:
    """Every file of ``ref``'s tree with its bytes (one ``cat-file --batch`` for all)."""
    listing = _git(repo, "ls-tree", "-r", "-z", ref).split("\0")
    entries = [line.split("\t", 1) for line in listing if line]
    blobs = [(meta.split()[2], path) for meta, path in entries if meta.split()[1] == "blob"]
    if not blobs:
        return {}
    batch = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "--batch"],
        input="".join(f"{sha}\n" for sha, _ in blobs).encode(),
        capture_output=True,
        check=True,
    ).stdout
    files: dict[str, bytes] = {}
    at = 0
    for _, path in blobs:
        header_end = batch.index(b"\n", at)
        size = int(batch[at:header_end].split()[2])
        files[path] = batch[header_end + 1 : header_end + 1 + size]
        at = header_end + 1 + size + 1
    return files


def _checkout(repo: Path) -> dict[str, bytes]:
    """Every file of the user's checkout but git's and council's own directories."""
    files: dict[str, bytes] = {}
    for directory, names, found in os.walk(repo):
        here = Path(directory)
        if here == repo:
            names[:] = [n for n in names if n not in (".git", ".council")]
        for name in found:
            path = here / name
            files[str(path.relative_to(repo))] = (
                os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
            )
    return files
