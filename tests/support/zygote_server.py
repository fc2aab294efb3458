"""The server side of ``zygote``: one process per test worker that imports the ``council``
command's modules once, then forks a child for each ``python -m orchestrator.cli.app ...``
the worker would have started, and tells the worker each child's pid and, later, its wait
status.

Run as a script (``python zygote_server.py FD``), never imported by the tests: its fork
must happen in a process that runs no thread and has no test module in it. ``FD`` is the
worker's end of a socket pair. Its first message is a JSON line: ``{"read": [...]}``, the
environment variables the imports read (``"*"``: the whole environment was read, so any
difference sends the worker to a real ``exec``), or ``{"error": ...}``. Each request is a
length-prefixed JSON header (argv, cwd, env, a new session) with four descriptors: the
child's stdin, stdout, stderr, and a socket on which the child sends ``p`` and its pid once
it is set up (or ``e`` and an errno: its directory could not be entered), and the server
``s`` and its wait status once it ended (8 bytes each after the letter).
"""

from __future__ import annotations

import array
import ast
import contextlib
import ctypes
import gc
import importlib
import io
import json
import os
import pkgutil
import runpy
import select
import socket
import struct
import sys
import threading
from pathlib import Path
from typing import Any

APP = "orchestrator.cli.app"
ROOTS = ("orchestrator", "adapters")
# Never preloaded: the project's fakes (no command imports them) and a package's ``-m`` entry.
LEFT_OUT = ("orchestrator.testing", "adapters.testing")
_PR_SET_MM, _PR_SET_MM_ARG_END = 35, 9


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    before = _open_fds()
    try:
        read = _preload()
    except BaseException as error:
        control.sendall(json.dumps({"error": repr(error)}).encode() + b"\n")
        return
    # Descriptors the imports opened (the console's /dev/null) stay open in every child, as
    # they would in a process of its own; one that is not /dev/null would be shared with the
    # others (an offset, a pipe's reader): then nothing is forked.
    kept = sorted(_open_fds() - before)
    shared = [fd for fd in kept if os.readlink(f"/proc/self/fd/{fd}") != os.devnull]
    if shared:
        control.sendall(json.dumps({"error": f"the imports opened {shared}"}).encode() + b"\n")
        return
    if threading.active_count() != 1:
        names = [t.name for t in threading.enumerate()]
        control.sendall(json.dumps({"error": f"threads after the imports: {names}"}).encode())
        return
    control.sendall(json.dumps({"read": read}).encode() + b"\n")
    child = _serve(control)
    if child is not None:
        _become(*child, kept)


def _preload() -> list[str] | str:
    """Import every module of the project's packages, recording which environment
    variables were read meanwhile (``"*"`` when the whole environment was)."""
    keys: set[str] = set()
    whole = False
    environ_type = type(os.environ)
    getitem, iterate = environ_type.__getitem__, environ_type.__iter__

    def recorded_getitem(self: Any, key: str) -> str:
        if not _for_the_user_base(sys._getframe(1)):
            keys.add(key)
        return getitem(self, key)

    def recorded_iter(self: Any) -> Any:
        nonlocal whole
        whole = True
        return iterate(self)

    environ_type.__getitem__ = recorded_getitem  # type: ignore[method-assign]
    environ_type.__iter__ = recorded_iter  # type: ignore[method-assign]
    try:
        sources: list[Path] = []
        for root in ROOTS:
            package = importlib.import_module(root)
            for info in pkgutil.walk_packages(package.__path__, f"{root}."):
                name = info.name
                if name == APP or name.endswith(".__main__") or name.startswith(LEFT_OUT):
                    continue
                module = importlib.import_module(name)
                if module.__file__:
                    sources.append(Path(module.__file__))
        for name in sorted(_imported_in_functions(sources)):
            with contextlib.suppress(Exception):  # an optional part this machine lacks
                importlib.import_module(name)
        _build_deferred_models()
    finally:
        environ_type.__getitem__ = getitem  # type: ignore[method-assign]
        environ_type.__iter__ = iterate  # type: ignore[method-assign]
    gc.collect()
    gc.freeze()
    return "*" if whole else sorted(keys)


def _imported_in_functions(sources: list[Path]) -> set[str]:
    """The modules the project imports inside its functions (first use, not import time:
    ``portalocker`` at the run lock, ``rich`` at the first line printed): each child would
    import them again; imported here once, as the project's own modules are. Its fakes
    (``LEFT_OUT``) and the command's module are still never imported."""
    names: set[str] = set()
    for source in sources:
        tree = ast.parse(source.read_bytes())
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import):
                    names.update(alias.name for alias in inner.names)
                elif isinstance(inner, ast.ImportFrom) and inner.module and not inner.level:
                    names.add(inner.module)
    return {n for n in names if n != APP and not n.startswith(LEFT_OUT)}


def _build_deferred_models() -> None:
    """Build every pydantic model of the project that waits for its first use
    (``defer_build``, or a reference resolved later): each child would build the ones it
    uses, the same models, again. One that cannot be built yet stays as it is."""
    from pydantic import BaseModel

    todo, seen = [BaseModel], set()
    while todo:
        for model in todo.pop().__subclasses__():
            if model in seen:
                continue
            seen.add(model)
            todo.append(model)
            ours = model.__module__.startswith(ROOTS) and not model.__module__.startswith(LEFT_OUT)
            if ours and not model.__dict__.get("__pydantic_complete__", True):
                with contextlib.suppress(Exception):
                    model.model_rebuild()


def _for_the_user_base(frame: Any) -> bool:
    """Is this read ``sysconfig``'s of ``HOME`` and ``PYTHONUSERBASE`` at its import? It keeps
    only whether a user base exists (``_HAS_USER_BASE``), true for any ``HOME``: a child with
    another ``HOME`` is still what ``exec`` would make."""
    for _ in range(4):
        if frame is None:
            return False
        if frame.f_code.co_name == "_getuserbase" and frame.f_code.co_filename.endswith(
            "sysconfig.py"
        ):
            return True
        frame = frame.f_back
    return False


def _serve(control: socket.socket) -> tuple[dict[str, Any], list[int]] | None:
    """Fork a child per request; report each child's end. Returns in the child only (its
    request and descriptors); returns None once the worker is gone."""
    children: dict[int, tuple[int, socket.socket]] = {}  # pidfd -> pid, status socket
    poller = select.poll()
    poller.register(control, select.POLLIN)
    while True:
        for fd, _ in poller.poll():
            if fd == control.fileno():
                request = _receive(control)
                if request is None:
                    return None
                header, fds = request
                pid = os.fork()
                if pid == 0:
                    for _, sibling in children.values():
                        sibling.close()
                    control.detach()
                    return header, fds
                status = socket.socket(fileno=fds[3])
                for other in fds[:3]:
                    os.close(other)
                pidfd = os.pidfd_open(pid)
                children[pidfd] = (pid, status)
                poller.register(pidfd, select.POLLIN)
            else:
                pid, status = children.pop(fd)
                poller.unregister(fd)
                os.close(fd)
                _, wait_status = os.waitpid(pid, 0)
                with contextlib.suppress(OSError):  # the worker let go of it
                    status.sendall(b"s" + struct.pack("q", wait_status))
                status.close()


def _receive(control: socket.socket) -> tuple[dict[str, Any], list[int]] | None:
    fds = array.array("i")
    size = struct.calcsize("i") * 4
    data, ancillary, _flags, _ = control.recvmsg(4, socket.CMSG_SPACE(size))
    if not data:
        return None
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    (length,) = struct.unpack("I", data)
    body = b""
    while len(body) < length:
        body += control.recv(length - len(body))
    return json.loads(body), list(fds)


def _open_fds() -> set[int]:
    """This process's open descriptors (not the one that listed them, closed by then)."""
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            os.fstat(int(name))
        except OSError:
            continue
        found.add(int(name))
    return found


def _become(header: dict[str, Any], fds: list[int], kept: list[int]) -> None:
    """In the child: the worker's standard streams, directory, environment and command
    line, then the command's module run as ``python -m`` runs it."""
    if header["new_session"]:
        os.setsid()
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
    try:
        os.chdir(header["cwd"])
    except OSError as refused:  # raised in the worker, as exec's Popen raises it
        os.write(fds[3], b"e" + struct.pack("q", refused.errno or 0))
        os._exit(255)
    os.environ.clear()
    os.environ.update(header["env"])
    _retitle(header["argv"])
    # Told only now, as exec's Popen returns only once the new program runs: a test that
    # signals its group or reads its directory or command line finds them set.
    os.write(fds[3], b"p" + struct.pack("q", os.getpid()))
    low = 3
    for fd in [*kept, os.sysconf("SC_OPEN_MAX")]:
        os.closerange(low, fd)
        low = fd + 1
    # The standard streams made again as the interpreter makes them at its start (the same
    # PYTHON* variables, or the worker would have gone through exec): on the new descriptors.
    for name, fd, mode in (("stdin", 0, "rb"), ("stdout", 1, "wb"), ("stderr", 2, "wb")):
        old = getattr(sys, name)
        raw = isinstance(old.buffer, io.RawIOBase)  # PYTHONUNBUFFERED: no buffer under it
        stream = io.TextIOWrapper(
            io.open(fd, mode, buffering=0 if raw else -1, closefd=False),  # noqa: UP020, SIM115 - as the interpreter opens them, for good
            encoding=old.encoding,
            errors=old.errors,
            line_buffering=old.line_buffering,
            write_through=old.write_through,
        )
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
    sys.modules.pop(APP, None)  # never imported here: the command's module runs as __main__
    sys.argv = [APP, *header["argv"][3:]]
    sys.path[0] = os.getcwd()
    runpy.run_module(APP, run_name="__main__", alter_sys=True)


def _retitle(argv: list[str]) -> None:
    """What ``/proc/PID/cmdline`` shows: the command as the worker asked for it, written over
    this process's own (padded) command line; the worker sends none longer than the padding.
    Left as it was where the kernel refuses the write."""
    stat = Path("/proc/self/stat").read_bytes()
    fields = stat.rsplit(b")", 1)[1].split()
    start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (fields 48, 49)
    line = b"\0".join(os.fsencode(a) for a in argv) + b"\0"
    if len(line) > end - start:
        return
    try:
        with open("/proc/self/mem", "r+b", buffering=0) as memory:
            memory.seek(start)
            memory.write(line + b"\0" * (end - start - len(line)))
    except OSError:
        return
    # Where it may (CAP_SYS_RESOURCE: root), the line ends at the command's end, not after
    # the padding's NULs.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_MM, _PR_SET_MM_ARG_END, ctypes.c_ulong(start + len(line)), 0, 0)


if __name__ == "__main__":
    main()
