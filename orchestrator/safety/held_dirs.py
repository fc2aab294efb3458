"""Verified directory descriptors kept open: the state store's way to its own directories.

``safe_write`` reaches a directory afresh for every operation: an open of the whole path, the
kernel's name for what it opened (``/proc/self/fd``) compared with the expected one, and a
close; a record write reaches the same directory five times (its lock, its temp file, the
history link, the rename, the directory fsync). ``HeldDirs`` reaches each directory once the
same way (``safe_write.open_dir``; a directory whose parent is held is opened from the
parent's descriptor with ``O_NOFOLLOW``, made there when missing) and keeps the descriptor;
each later use checks only the kernel's name for it again (``safe_write.opened_at``: one
``readlink``, no lookup of the path), then works relative to it (``openat``, ``renameat``,
``linkat``, ``unlinkat``, ``fsync``).

What that keeps of ``safe_write``'s defences, and why it holds:

- a link planted on the way, at any time, is seen at the next use as before: the directory
  held is then no longer named by the path the kernel gives it (moved aside for the link,
  or removed), so it is let go and reached afresh, and the walk names the link
  (``PathEscapeError``); between the check and the operation the descriptor is the
  directory checked, so a swap in that moment changes nothing, as with ``safe_write``;
- a link at the file itself is refused as before (``O_NOFOLLOW``; a rename or link replaces
  the link, never follows it);
- a directory removed after the check (a record deleted by another process) is noticed by
  the operation that finds nothing there: its descriptor has no links left (``st_nlink``
  0), so it is let go and the operation runs once more on the directory the path names now.
  Nothing can be created in a removed directory, so no write is lost in it.

Without ``/proc`` nothing is held: each use reaches its directory afresh, as ``safe_write``.

At most ``capacity`` descriptors are held (the least recently used let go first, once no
thread is using it); worker threads share one ``HeldDirs``, each use counted, so a
descriptor is never closed under a thread that uses it. ``close`` lets every one go (a
store's ``aclose``); a ``HeldDirs`` dropped without it closes them when collected.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import TypeVar

from orchestrator.safety import safe_write

__all__ = ["DEFAULT_CAPACITY", "HeldDirs"]

T = TypeVar("T")

_CHECKABLE = os.path.isdir("/proc/self/fd/")  # a held directory can be checked at each use

DEFAULT_CAPACITY = 64
"""Descriptors one ``HeldDirs`` keeps: the directories of the records in use at once (a
run's tasks in flight and their keyed records), the busiest parents (``tasks/``) among them."""


class _Held:
    __slots__ = ("dropped", "fd", "root", "users")

    def __init__(self, fd: int, root: str) -> None:
        self.fd = fd
        self.root = root  # what it was reached from
        self.users = 0
        self.dropped = False  # let go of: closed once its last user is done


class HeldDirs:
    """Directory descriptors, each reached once without following a link (module doc)."""

    def __init__(self, root_of: Callable[[str], str], capacity: int = DEFAULT_CAPACITY) -> None:
        """``root_of(directory)``: the directory ``directory`` must be reached from (trusted
        as given), asked only when it is not held; it raises to refuse ``directory``."""
        if capacity < 1:
            raise ValueError(f"HeldDirs capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self._root_of = root_of
        self._mutex = threading.Lock()
        self._held: OrderedDict[str, _Held] = OrderedDict()
        self.opened = 0  # directories reached (not found held): for tests and benches
        weakref.finalize(self, _close_all, self._held, self._mutex)

    def run(self, directory: str, create: bool, op: Callable[[int], T]) -> T:
        """``op(fd)`` with ``directory``'s descriptor (made when missing with
        ``create``, else ``FileNotFoundError``). When ``op`` finds nothing in a directory
        removed since it was held, once more on the one there now."""
        key = os.path.normpath(directory)
        held = self._take(key, create)
        try:
            return op(held.fd)
        except FileNotFoundError:
            if not _removed(held.fd):
                raise
        finally:
            self._give_back(held)
        self.forget(key)
        held = self._take(key, create)
        try:
            return op(held.fd)
        finally:
            self._give_back(held)

    @contextlib.contextmanager
    def reach(self, directory: str, create: bool) -> Iterator[int]:
        """``directory``'s descriptor for the ``with`` block (no retry: see ``run``)."""
        held = self._take(os.path.normpath(directory), create)
        try:
            yield held.fd
        finally:
            self._give_back(held)

    def forget(self, directory: str) -> None:
        """Let ``directory``'s descriptor go (it was removed, or is about to be)."""
        with self._mutex:
            held = self._held.pop(os.path.normpath(directory), None)
            if held is not None:
                _drop(held)

    def close(self) -> None:
        """Let every descriptor go (those in use when their user is done)."""
        _close_all(self._held, self._mutex)

    def __len__(self) -> int:
        return len(self._held)

    # -- holding ----------------------------------------------------------------------------

    def _take(self, key: str, create: bool) -> _Held:
        with self._mutex:
            held = self._held.get(key)
            if held is not None:
                held.users += 1
                self._held.move_to_end(key)
        if held is not None:
            # Still the directory the path names, no link on the way: one look at the
            # kernel's name for it, where reaching it afresh is an open, that look and a close.
            if safe_write.opened_at(held.fd, held.root, key):
                return held
            self._give_back(held)
            self.forget(key)  # moved, removed or a link put on the way: reached afresh
        root = self._root_of(key)
        fd = self._open(root, key, create)
        with self._mutex:
            self.opened += 1
            held = self._held.get(key)
            if held is not None:  # another thread reached it meanwhile: theirs is kept
                os.close(fd)
            else:
                held = _Held(fd, root)
                if _CHECKABLE:
                    self._held[key] = held
                    self._let_go_oldest()
                else:
                    held.dropped = True  # nothing to check it by later: closed after this use
            held.users += 1
            return held

    def _open(self, root: str, key: str, create: bool) -> int:
        """``key`` reached without following a link: from its parent's held descriptor (one
        ``openat`` with ``O_NOFOLLOW``, the parent held first, the same way), up to ``root``,
        which ``safe_write`` opens (trusted as given)."""
        top = os.path.normpath(root)
        parent, _, name = key.rpartition(os.sep)
        if key == top or not name or not (parent == top or parent.startswith(top + os.sep)):
            return safe_write.open_dir(root, key, create)
        try:
            above = self._take(parent, create)
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), key) from None
        try:
            return safe_write.open_child(above.fd, name, key, create)
        except FileNotFoundError:
            if not _removed(above.fd):
                raise
        finally:
            self._give_back(above)
        self.forget(parent)  # removed since it was held: reached afresh, once
        above = self._take(parent, create)
        try:
            return safe_write.open_child(above.fd, name, key, create)
        finally:
            self._give_back(above)

    def _give_back(self, held: _Held) -> None:
        with self._mutex:
            held.users -= 1
            if held.dropped and held.users == 0:
                os.close(held.fd)

    def _let_go_oldest(self) -> None:
        """Keep at most ``capacity`` (mutex held)."""
        while len(self._held) > self.capacity:
            _, held = self._held.popitem(last=False)
            _drop(held)


def _drop(held: _Held) -> None:
    """Let ``held`` go: closed now when unused, else by its last user (mutex held)."""
    held.dropped = True
    if held.users == 0:
        os.close(held.fd)


def _close_all(entries: OrderedDict[str, _Held], mutex: threading.Lock) -> None:
    with mutex:
        for held in entries.values():
            _drop(held)
        entries.clear()


def _removed(fd: int) -> bool:
    """Whether the directory open at ``fd`` has been removed (no name links to it)."""
    try:
        return os.fstat(fd).st_nlink == 0
    except OSError as exc:
        return exc.errno == errno.ENOENT
