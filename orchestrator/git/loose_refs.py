"""A branch written, moved or deleted as git's "files" ref storage does it, without a process.

A session's branch is made, moved by each of its commits and deleted at its removal: three
``git update-ref`` processes a task, each costing more to start than its write. Git writes a
loose ref in a few file steps (``refs/files-backend.c``), and every git process takes the same
lock, so doing those steps here is a ref write git itself cannot tell apart:

1. the lock: ``<ref>.lock`` made only where no file of that name is (a hard link of a finished
   temporary file, which never replaces anything: ``safe_write.create``), already holding the
   new value; a lock that is there is another writer's, and git is asked instead;
2. under it, the ref's value read (the loose file, else ``packed-refs``) and compared with the
   expected one (none: the ref must not exist), as ``update-ref <ref> <new> <old>`` compares;
3. the reflog line appended (``<old> <new> <committer> <time> <zone>\\t<message>``) where git
   would write one: the log exists, or ``core.logAllRefUpdates`` makes one for a branch;
4. the lock renamed over the ref (a delete: the ref and its reflog removed, the lock last, and
   the empty directories above them up to ``refs/heads``, as git does).

Every path is reached without following a link (``safe_write``): a CLI may write its own task's
ref directory and reflogs, and a link it planted there is refused, never written through. The
answer is None wherever this cannot be done exactly as git would (the caller then runs git):
not a plain branch name, a reftable repository, a lock held, a ref or directory that is a link
or not a regular file, a name clash with a packed ref, a delete of a packed ref (git rewrites
``packed-refs``), a config this reader cannot judge (``include``, a bare repository, an
unreadable ``logAllRefUpdates``, ``core.sharedRepository``), a committer identity not given
in the environment.
Each write passes the crash point a git process would (``git.ran``, ``update-ref``), so the
crash sweeps find the same places.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path

from orchestrator.errors import PathEscapeError
from orchestrator.safety import safe_write
from orchestrator.safety.crashpoints import crash_point

__all__ = ["delete_branch", "plain_config", "write_branch"]

ZERO = "0" * 40
_OID = re.compile(r"[0-9a-f]{40}")
# A branch name git's check-ref-format accepts, kept to the plain characters the orchestrator's
# names use: components of [A-Za-z0-9_.-], none starting with a dot or ending in ``.lock``.
_COMPONENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_MESSAGE = re.compile(r"[!-~]+(?: [!-~]+)*")  # printable, single-spaced: kept as git keeps it
_NAME = re.compile(r"[^<>\n]+")
_TRUE = {"true", "yes", "on", "1", "always"}
_FALSE = {"false", "no", "off", "0"}


class _Unsure(Exception):
    """The write cannot be done here exactly as git would do it: the caller runs git."""


def write_branch(
    common: Path,
    ref: str,
    new: str,
    old: str | None,
    message: str,
    env: Mapping[str, str],
    worktree_admin: Path | None = None,
) -> bool | None:
    """``git update-ref -m <message> <ref> <new> <old or zero>`` on git's files (blocking):
    True written, False refused (the ref is not at ``old``; exists, when ``old`` is None),
    None where git must be asked (module doc). ``env``: the committer identity git would
    have (``GIT_COMMITTER_NAME``, ``GIT_COMMITTER_EMAIL``). ``worktree_admin``: the git dir
    of the worktree git would have run in; where its HEAD names ``ref``, git logs the move in
    that HEAD's reflog too, and so does this."""
    try:
        path = _branch_path(common, ref)
        if not _OID.fullmatch(new) or (old is not None and not _OID.fullmatch(old)):
            return None
        if not _MESSAGE.fullmatch(message):
            return None
        ident = _committer(env)
        autolog = _logs_new_branches(common, env)
        config = plain_config(common, env)
        if config is None or "sharedrepository" in config:
            return None  # files made with the group's or everyone's permissions: git does it
        clash = _packed_clash(common, ref)
        safe_write.make_dirs(common, path.parent)
        lock = Path(f"{path}.lock")
        if not safe_write.create(common, lock, f"{new}\n".encode()):
            return None  # another writer holds it: git waits or says so
        try:
            current = _current(common, path, ref, clash)
            if current != old:
                _drop(common, lock)
                return False
            line = f"{old or ZERO} {new} {ident}\t{message}\n"
            log = common / "logs" / ref
            if autolog or os.path.lexists(log):
                _append_log(common, log, line)
            if worktree_admin is not None and _head_names(worktree_admin, ref):
                head_log = worktree_admin / "logs" / "HEAD"
                if autolog or os.path.lexists(head_log):
                    _append_log(common, head_log, line)
            safe_write.replace(common, lock, path)
        except BaseException:
            _drop(common, lock)
            raise
    except (_Unsure, PathEscapeError, OSError):
        return None
    crash_point("git.ran", "update-ref")
    return True


def delete_branch(common: Path, ref: str, expected: str) -> bool | None:
    """``git update-ref -d <ref> <expected>`` on git's files (blocking): True deleted, False
    refused (not at ``expected``, or gone), None where git must be asked (a packed ref, a
    lock held, anything of the module doc)."""
    try:
        path = _branch_path(common, ref)
        if not _OID.fullmatch(expected):
            return None
        clash = _packed_clash(common, ref)
        if clash is not None:
            return None  # in packed-refs (or a name beside it there): git rewrites that file
        if not os.path.lexists(path):
            return False  # neither loose nor packed: no such branch
        lock = Path(f"{path}.lock")
        if not safe_write.create(common, lock, f"{expected}\n".encode()):
            return None
        try:
            if _current(common, path, ref, None) != expected:
                _drop(common, lock)
                return False
            safe_write.unlink(common, path)
            log = common / "logs" / ref
            safe_write.unlink(common, log)
        finally:
            _drop(common, lock)
        _prune_dirs(common, path.parent)
        _prune_dirs(common, log.parent)
    except (_Unsure, PathEscapeError, OSError):
        return None
    crash_point("git.ran", "update-ref")
    return True


def _branch_path(common: Path, ref: str) -> Path:
    """The loose file of branch ``ref`` under ``common``; refused (``_Unsure``) unless it is a
    plain ``refs/heads/...`` name in the files backend."""
    parts = ref.split("/")
    if len(parts) < 3 or parts[:2] != ["refs", "heads"]:
        raise _Unsure(ref)
    for part in parts[2:]:
        if not _COMPONENT.fullmatch(part) or part.endswith((".lock", ".")) or ".." in part:
            raise _Unsure(ref)
    if os.path.lexists(common / "reftable"):
        raise _Unsure("reftable")
    return common.joinpath(*parts)


def _current(common: Path, path: Path, ref: str, packed: tuple[str, str] | None) -> str | None:
    """The ref's value under its lock: its loose file (a regular file, never a link), else its
    packed value (``packed``: the clash ``_packed_clash`` found, when it is the ref itself)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    if info is not None:
        if not os.path.isfile(path) or os.path.islink(path):
            raise _Unsure(f"{path} is not a regular file")
        fd = safe_write.open_file(common, path, os.O_RDONLY)
        with os.fdopen(fd, "rb") as file:
            value = file.read(200).strip().decode("ascii", "replace")
        if not _OID.fullmatch(value):
            raise _Unsure(f"{path} holds no object id")
        return value
    if packed is None:
        return None
    name, oid = packed
    if name != ref:
        raise _Unsure(f"{name} in packed-refs clashes with the ref")
    return oid


def _packed_clash(common: Path, ref: str) -> tuple[str, str] | None:
    """The packed ref named ``ref``, or one whose name is a directory of it or it of them (a
    name clash git refuses): (name, id); None when ``packed-refs`` holds neither."""
    try:
        data = (common / "packed-refs").read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _Unsure(str(exc)) from exc
    wanted = ref.encode()
    for line in data.splitlines():
        if not line or line.startswith((b"#", b"^")):
            continue
        oid, _, name = line.partition(b" ")
        if name == wanted or name.startswith(wanted + b"/") or wanted.startswith(name + b"/"):
            return name.decode("utf-8", "replace"), oid.decode("ascii", "replace")
    return None


def _head_names(admin: Path, ref: str) -> bool:
    """Whether the worktree whose git dir is ``admin`` has its HEAD on ``ref``."""
    head = admin / "HEAD"
    if os.path.islink(head):
        return False
    try:
        return head.read_bytes().strip() == f"ref: {ref}".encode()
    except OSError:
        return False


def _committer(env: Mapping[str, str]) -> str:
    """``Name <email> <seconds> <zone>`` as git writes it in a reflog line."""
    name, email = env.get("GIT_COMMITTER_NAME"), env.get("GIT_COMMITTER_EMAIL")
    if not name or not email or "GIT_COMMITTER_DATE" in env:
        raise _Unsure("no committer identity given")
    if not _NAME.fullmatch(name) or not _NAME.fullmatch(email) or name != name.strip(" .,:;"):
        raise _Unsure("an identity git would clean up")
    now = time.time()
    offset = time.localtime(now).tm_gmtoff // 60
    sign = "+" if offset >= 0 else "-"
    zone = f"{sign}{abs(offset) // 60:02d}{abs(offset) % 60:02d}"
    return f"{name} <{email}> {int(now)} {zone}"


def _logs_new_branches(common: Path, env: Mapping[str, str]) -> bool:
    """Whether git would start a reflog for a new branch: ``core.logAllRefUpdates`` as the
    config files git reads here set it (unset: yes, in a repository with a checkout)."""
    value: str | None = None
    for path in _config_files(common, env):
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as exc:
            raise _Unsure(str(exc)) from exc
        found = _core_setting(text, "logallrefupdates")
        if _core_setting(text, "bare") not in (None, *_FALSE):
            raise _Unsure("a bare repository")
        if found is not None:
            value = found
    if value is None:
        return True
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _Unsure(f"core.logAllRefUpdates={value}")


def plain_config(common: Path, env: Mapping[str, str]) -> str | None:
    """The text of every config file a git process started with ``env`` in the repository of
    git common dir ``common`` reads, lower-cased and joined, for a caller that only needs to
    know a setting is absent; None when one cannot be read or includes another."""
    texts: list[str] = []
    for path in _config_files(common, env):
        try:
            text = path.read_text(encoding="utf-8").lower()
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError):
            return None
        if "include" in text:
            return None
        texts.append(text)
    return "\n".join(texts)


def _config_files(common: Path, env: Mapping[str, str]) -> list[Path]:
    """The config files a git process started with ``env`` reads, in git's order."""
    files: list[Path] = []
    if not env.get("GIT_CONFIG_NOSYSTEM", os.environ.get("GIT_CONFIG_NOSYSTEM")):
        system = env.get("GIT_CONFIG_SYSTEM", os.environ.get("GIT_CONFIG_SYSTEM"))
        files.append(Path(system or "/etc/gitconfig"))
    configured = env.get("GIT_CONFIG_GLOBAL", os.environ.get("GIT_CONFIG_GLOBAL"))
    if configured is not None:
        files.append(Path(configured))
    else:
        home = env.get("HOME", os.environ.get("HOME"))
        xdg = env.get("XDG_CONFIG_HOME", os.environ.get("XDG_CONFIG_HOME"))
        if xdg:
            files.append(Path(xdg) / "git" / "config")
        elif home:
            files.append(Path(home) / ".config" / "git" / "config")
        if home:
            files.append(Path(home) / ".gitconfig")
    files += [common / "config", common / "config.worktree"]
    return files


def _core_setting(text: str, key: str) -> str | None:
    """The last value of ``core.<key>`` in a config file's text; ``_Unsure`` where this small
    reader could misread it (an include, the key in a form it does not parse)."""
    lowered = text.lower()
    if "include" in lowered:
        raise _Unsure("a config with includes")
    if key not in lowered:
        return None
    section = ""
    value: str | None = None
    for raw in lowered.splitlines():
        line = raw.strip()
        if line.startswith("["):
            end = line.find("]")
            if end < 0:
                raise _Unsure("a section header this reader does not parse")
            section, line = line[1:end].strip(), line[end + 1 :].strip()
        if key not in line:
            continue
        match = re.fullmatch(rf"{key}\s*(?:=\s*([a-z0-9]+))?\s*(?:[#;].*)?", line)
        if match is None or section != "core":
            raise _Unsure(f"{key} in a form this reader does not parse")
        value = match.group(1) or "true"
    return value


def _append_log(common: Path, log: Path, line: str) -> None:
    fd = safe_write.open_append(common, log)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _drop(common: Path, lock: Path) -> None:
    with contextlib.suppress(OSError):
        safe_write.unlink(common, lock)


def _prune_dirs(common: Path, directory: Path) -> None:
    """Remove the directories above a deleted ref or log that are empty now, up to (not
    including) ``refs/heads`` and ``logs/refs/heads``, as git does."""
    stops = {common / "refs" / "heads", common / "logs" / "refs" / "heads", common}
    while directory not in stops and common in directory.parents:
        try:
            safe_write.rmdir(common, directory)
        except OSError:
            return
        directory = directory.parent
