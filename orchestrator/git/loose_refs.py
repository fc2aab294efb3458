"""A session branch made, moved or deleted on git's "files" ref storage, without a process and
without a lock file a kill could leave behind.

A session's branch is made, moved by its commit and deleted at its removal: three
``git update-ref`` processes a task, each costing more to start than its write. An earlier
version of this module took git's own lock (``<ref>.lock``) and was dropped: a kill of the
orchestrator between the lock and its rename (another thread reaching a crash point, a
SIGKILL from outside) left the lock, which refuses every later write of the ref, where a
git process, a child that outlives its parent, would have finished. So no step here makes a
file git reads as a lock, and each step is one atomic system call whose before and after are
both states an ``update-ref`` killed before or after its run leaves:

- made (``old`` None): the new value in a temporary file beside the ref (a dot-name, which git
  never reads as a ref), hard-linked to the ref's name (``safe_write.create``): a link never
  replaces anything, so two writers of one new branch cannot both succeed; then the reflog
  line, where git would write one;
- moved: the ref read and compared with ``old`` (as ``update-ref <ref> <new> <old>``
  compares), a temporary file renamed over it (``safe_write.write_atomic``), then the reflog
  line (and the worktree's ``HEAD`` reflog, where its HEAD is on the branch, as git logs it);
- deleted: the ref read and compared with ``expected``, unlinked, then its reflog and the empty
  directories above them, up to ``refs/heads``, as git prunes them.

A kill leaves the ref at its old value or at its new one, and at worst a temporary dot-file
git ignores or a reflog without its last line, never a ``.lock``. Where another writer holds
the ref's lock (a ``<ref>.lock`` is there) git is asked, and it waits or refuses as it does.
The compare is not under git's lock: between the read and the write only a writer of a
session's own branch could move it, and the orchestrator moves it only with the session's
CLI gone (a CLI's own commits move it while it runs, which the tamper check judges); such a
writer could as well move the branch just after an ``update-ref``.

Every path is reached without following a link (``safe_write``): a CLI may write its own task's
ref directory and reflogs, and a link it planted there is refused, never written through. The
answer is None wherever this cannot be done exactly as git would (the caller then runs git):
not a plain branch name, a reftable repository, a lock held, a ref or directory that is a link
or not a regular file, a name clash with a packed ref, a move or delete of a packed ref (git
rewrites ``packed-refs``), a config this reader cannot judge (``include``, a bare repository,
an unreadable ``logAllRefUpdates``, ``core.sharedRepository``), a committer identity not
given in the environment. Each write passes the crash point a git process would
(``git.ran``, ``update-ref``), so the crash sweeps kill at the same places.
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Mapping
from pathlib import Path

from orchestrator.errors import PathEscapeError
from orchestrator.git.config_files import plain_config
from orchestrator.safety import safe_write
from orchestrator.safety.crashpoints import crash_point

__all__ = ["delete_branch", "write_branch"]

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
        clash = _packed_clash(common, ref)
        if clash is not None and (old is not None or clash[0] != ref):
            return None  # a packed ref moved, or a name beside it: git rewrites packed-refs
        if clash is not None:
            return False  # made already (packed)
        if os.path.lexists(f"{path}.lock"):
            return None  # another writer holds it: git waits or says so
        safe_write.make_dirs(common, path.parent)
        logs = [common / "logs" / ref]
        if worktree_admin is not None and _head_names(worktree_admin, ref):
            logs.append(worktree_admin / "logs" / "HEAD")
        logs = [log for log in logs if autolog or os.path.lexists(log)]
        for log in logs:  # where each line goes reached now, before the ref is written
            safe_write.make_dirs(common, log.parent)
            if os.path.islink(log) or (os.path.lexists(log) and not os.path.isfile(log)):
                return None
        data = f"{new}\n".encode()
        if old is None:
            if not safe_write.create(common, path, data):
                return False
        else:
            if _current(common, path) != old:
                return False
            safe_write.write_atomic(common, path, data)
        line = f"{old or ZERO} {new} {ident}\t{message}\n"
        for log in logs:
            _append_log(common, log, line)
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
        if _packed_clash(common, ref) is not None:
            return None  # in packed-refs (or a name beside it there): git rewrites that file
        if os.path.lexists(f"{path}.lock"):
            return None
        if _current(common, path) != expected:
            return False  # moved, or neither loose nor packed: no such branch
        safe_write.unlink(common, path)
        log = common / "logs" / ref
        safe_write.unlink(common, log)
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


def _current(common: Path, path: Path) -> str | None:
    """The ref's loose value (a regular file, never a link); None when there is none (a packed
    one was looked at first, ``_packed_clash``)."""
    try:
        fd = safe_write.open_file(common, path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise _Unsure(f"{path} is not a regular file")
        value = file.read(200).strip().decode("ascii", "replace")
    if not _OID.fullmatch(value):
        raise _Unsure(f"{path} holds no object id")
    return value


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
    if not name or not email or "GIT_COMMITTER_DATE" in {**os.environ, **env}:
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
    config files git reads here set it (unset: yes, in a repository with a checkout); a
    shared repository (files made with the group's permissions) is left to git."""
    text = plain_config(common, env)
    if text is None or "sharedrepository" in text:
        raise _Unsure("a config this reader cannot judge")
    if _core_setting(text, "bare") not in (None, *_FALSE):
        raise _Unsure("a bare repository")
    value = _core_setting(text, "logallrefupdates")
    if value is None or value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _Unsure(f"core.logAllRefUpdates={value}")


def _core_setting(text: str, key: str) -> str | None:
    """The last value of ``core.<key>`` in the config files' lower-cased text; ``_Unsure``
    where this small reader could misread it (the key in a form it does not parse)."""
    if key not in text:
        return None
    section = ""
    value: str | None = None
    for raw in text.splitlines():
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
    """``line`` appended to a reflog; the ref is written already, so a log that cannot be
    written now (a link planted since it was looked at) is left without it, as a kill there
    leaves it, and the write still stands."""
    try:
        fd = safe_write.open_append(common, log)
    except (PathEscapeError, OSError):
        return
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


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
