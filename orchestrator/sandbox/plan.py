"""What one CLI may see and write: the plan a sandbox enforces.

The whole filesystem is visible read-only, then, deepest path last (a deeper mount wins):

- **hidden** (an empty tmpfs, read-only but for ``/tmp`` and ``TMPDIR``, each a private
  scratch): the user's HOME (``~/.ssh``, ``~/.aws``, their other repositories), ``/tmp``, the
  orchestrator's ``TMPDIR`` when it is another directory (where the sockets it serves live:
  its MCP servers', ``council db up``'s), and the repository's ``.council/`` (other sessions'
  worktrees and homes, the run's state and logs);
- **readable again** (read-only): the repository's main checkout (the user's files: readable,
  never writable), the user's login files the CLI's adapter names (``Credential``), what the CLI
  needs to start that lives under a hidden directory (the executable, the interpreter its
  ``#!`` line names, the ``PATH`` entries there: ``~/.nvm``, ``~/.local``, ``~/.pyenv``, and
  the orchestrator's own Python, which runs many an adapter's script; the first directory
  below the hidden one is shown whole), and the run config's ``read:`` paths (what only a
  wrapper script names inside its text, say);
- **writable**: the session's worktree, its private HOME (with its TMPDIR), the run config's
  ``write:`` paths, and in the git common dir exactly what a commit on its own branch needs
  (``GitReach``: its own ``worktrees/<name>`` admin dir, its own branch's ref and reflog
  directories), and an object store of its own (``GIT_OBJECT_DIRECTORY``, with the
  repository's store, read-only, as its alternate), whose objects the orchestrator checks and
  takes in after the CLI exits (``orchestrator.git.objects``);
- **sealed** (read-only inside the writable ones): the worktree's ``.git`` file and its admin
  dir's ``commondir``, ``gitdir`` and ``config.worktree``, so no CLI points its git, or the
  orchestrator's, at a git dir or a config of its own.

So ``.git/config``, hooks, ``info/``, every other ref, other worktrees and their admin dirs,
and the user's checkout are out of reach: a write there fails with "Read-only file system".
The network stays open (the CLI talks to its model's API), in a namespace of the CLI's own
whose way out is the public network, not the machine's loopback (``sandbox.network``; a model
endpoint on the machine's loopback relayed in, that port alone: ``sandbox.relay``), unless
``network: model``, whose only way out is an allow-list proxy to the model's API hosts
(``sandbox.proxy``), or ``network: none``, which leaves the CLI no network at all. The plan
carries the settings' resource limits (``limits``: processes, memory, file size), which the
sandbox sets.

A command run on a session's work (a verify or setup command: code a CLI wrote) gets
``command_confinement``, the same plan with an allow-list of the user's HOME: hidden whole, as
for a CLI, with none of the CLI's logins; of what lives there only the toolchains the command
needs to start are shown (``_toolchains``: ``~/.cargo/bin``, never ``~/.cargo``); its HOME,
caches and TMPDIR are the session's private command HOME, writable; nothing of git is
writable; and under a path shown on purpose (``read:``) the places of the user's keys
(``SECRET_PLACES``) stay hidden.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from orchestrator.process.limits import UNBOUNDED, Limits

__all__ = [
    "SECRET_PLACES",
    "Confinement",
    "GitReach",
    "Sandbox",
    "SandboxSettings",
    "command_confinement",
    "confinement",
]

Kind = Literal["bubblewrap", "none"]
_TMP = "/tmp"  # noqa: S108 - hidden from the CLI, never written by us


@dataclass(frozen=True)
class SandboxSettings:
    """The run config's ``sandbox:`` for one adapter, resolved: which sandbox, and its knobs."""

    kind: Kind
    binary: str | None = None  # the sandbox's program (``bwrap``), when ``kind`` has one
    network: bool = True
    read: tuple[Path, ...] = ()
    write: tuple[Path, ...] = ()
    reason: str = ""  # why this kind, for ``council doctor`` and the run's start
    # The network helper (``slirp4netns``) giving an open network a namespace of its own
    # (``orchestrator.sandbox.network``); None: the machine's network (none here, or closed).
    uplink: str | None = None
    limits: Limits = UNBOUNDED  # processes, memory, file size (``orchestrator.process.limits``)
    # ``network: model``: no route out but the allow-list proxy to the model's API hosts
    # (``orchestrator.sandbox.proxy``); ``network`` stays True.
    only_model: bool = False


@dataclass(frozen=True)
class GitReach:
    """What a commit on the session's own branch needs of the repository, and what must stay
    as the orchestrator made it (from ``orchestrator.worktrees.confine``)."""

    repo_root: Path
    council_dir: Path
    writable: tuple[Path, ...]  # own admin dir, own ref and reflog directories
    sealed: tuple[Path, ...]  # the worktree's .git file, the admin dir's pointers
    # The CLI's own object store (``orchestrator.git.objects``), writable, given to its git as
    # ``GIT_OBJECT_DIRECTORY``; the repository's store stays read-only. None: the repository's
    # store is writable instead (for a caller that cannot take the objects in afterwards).
    objects: Path | None = None
    shared_objects: Path | None = None
    # The repository's remotes that are paths on this machine: kept read-only, even under a
    # writable path (``sealed``), so a CLI cannot push onto them.
    remotes: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Sandbox:
    """The sandbox a CLI or a command runs in: its settings and what of the repository it may
    reach."""

    settings: SandboxSettings
    reach: GitReach | None  # None where the kind is ``none``: nothing is confined
    # The session's own network, for a CLI under bubblewrap with an open network whose
    # session has services and a way out (``orchestrator.services``): ``join`` puts a command
    # line in that namespace, ``resolv`` names its DNS forwarder. None: the CLI's own network.
    join: Callable[[Sequence[str]], list[str]] | None = None
    resolv: Path | None = None
    # What it may reach when that is yet to be looked at (``reach`` None): the blocking look,
    # which the runner makes in the worker-thread call that builds the CLI's command (one hop
    # for both, ``reached``).
    look: Callable[[], GitReach] | None = None

    @property
    def confines(self) -> bool:
        """Whether it confines what runs in it: it has (or will look at) a reach and a binary."""
        return (self.reach is not None or self.look is not None) and bool(self.settings.binary)

    def reached(self) -> Sandbox:
        """This sandbox with its ``reach`` looked at (blocking), if it was yet to be."""
        if self.reach is not None or self.look is None:
            return self
        return replace(self, reach=self.look(), look=None)


@dataclass(frozen=True)
class Confinement:
    """One CLI's plan: see the module doc. Paths are absolute and normalized."""

    workdir: Path
    hidden: tuple[Path, ...]
    readable: tuple[Path, ...]
    writable: tuple[Path, ...]
    sealed: tuple[Path, ...]
    network: bool = True
    executable: str = ""  # the CLI's program, resolved to a path outside the sandbox
    env: tuple[tuple[str, str], ...] = ()  # set inside the sandbox (GIT_OBJECT_DIRECTORY)
    limits: Limits = UNBOUNDED  # on the CLI and all it starts
    # The CLI makes a sandbox of its own (codex): nested user namespaces allowed, and as root
    # a uid other than 0 inside (``orchestrator.sandbox.bubblewrap``).
    nested: bool = False
    mounts: tuple[tuple[str, Path], ...] = field(default=(), repr=False)

    @property
    def frozen(self) -> tuple[Path, ...]:
        """The hidden directories that stay read-only (all but the temporary ones, ``/tmp``
        and ``TMPDIR``: each a private scratch)."""
        scratch = {Path(path) for path in _temporary()}
        return tuple(path for path in self.hidden if path not in scratch)

    @property
    def ordered(self) -> tuple[tuple[str, Path], ...]:
        """Every mount, shallowest first (a deeper one lands on top): ``(kind, path)`` with
        kind ``hide``, ``read`` or ``write``; ``seal`` after them all, then ``secret`` (a
        file or directory hidden whatever is above it)."""
        return self.mounts


def confinement(
    settings: SandboxSettings,
    reach: GitReach,
    *,
    workdir: Path,
    home: Path,
    argv: Sequence[str],
    env: Mapping[str, str],
    logins: Iterable[Path] = (),
    user_home: str | None = None,
    nested: bool = False,
) -> Confinement:
    """The plan for one CLI start (blocking: it looks at the disk); ``nested``: the CLI
    sandboxes its own tools (``Adapter.sandboxes_itself``)."""
    user_home = user_home if user_home is not None else os.path.expanduser("~")
    places: list[str | Path] = [user_home, *_temporary(), *_there(reach.council_dir)]
    places += _runtime()
    hidden = [_norm(path) for path in places if path]
    hidden = [path for path in dict.fromkeys(hidden) if path != Path("/")]
    executable = shutil.which(argv[0], path=env.get("PATH")) if argv else None
    needed = _needed_to_start(executable, env)
    readable: list[Path] = [_norm(reach.repo_root)]
    readable += [_norm(path) for path in logins if os.path.lexists(path)]
    readable += [*_existing(settings.read), *_tops_under(hidden, needed)]
    writable = [_norm(workdir), _norm(home), *_existing(reach.writable)]
    inside: list[tuple[str, str]] = []
    if reach.objects is not None and os.path.isdir(reach.objects):
        writable.append(_norm(reach.objects))
        inside.append(("GIT_OBJECT_DIRECTORY", str(_norm(reach.objects))))
    elif reach.shared_objects is not None:
        writable.append(_norm(reach.shared_objects))
    writable += _existing(settings.write)
    sealed = _existing(reach.sealed) + _held_read_only(reach.remotes, hidden, readable, writable)
    return Confinement(
        workdir=_norm(workdir),
        hidden=tuple(hidden),
        readable=tuple(readable),
        writable=tuple(writable),
        sealed=tuple(sealed),
        network=settings.network,
        executable=executable or (argv[0] if argv else ""),
        env=tuple(inside),
        limits=settings.limits,
        nested=nested,
        mounts=_mounts(hidden, readable, writable, sealed),
    )


def _mounts(
    hidden: Sequence[Path],
    readable: Sequence[Path],
    writable: Sequence[Path],
    sealed: Sequence[Path],
    secrets: Sequence[Path] = (),
) -> tuple[tuple[str, Path], ...]:
    """Every mount in the order bwrap applies them: shallowest first (a path named twice takes
    the later, stronger kind), then the seals, then the secrets, hidden whatever is above."""
    kinds: dict[Path, str] = {}
    for kind, paths in (("hide", hidden), ("read", readable), ("write", writable)):
        for path in paths:
            kinds[path] = kind
    ordered = sorted(kinds.items(), key=lambda item: (len(item[0].parts), str(item[0])))
    return (
        *((kind, path) for path, kind in ordered),
        *(("seal", path) for path in sealed),
        *(("secret", path) for path in secrets),
    )


def _temporary() -> list[str]:
    """``/tmp`` and this process's ``TMPDIR`` when it is another directory: the sockets the
    orchestrator serves (its MCP servers', ``council db up``'s) and every other program's
    temporary files live there, so a CLI gets a private, empty one instead."""
    found = [_TMP]
    tmpdir = os.environ.get("TMPDIR", "")
    if tmpdir and os.path.isabs(tmpdir) and os.path.isdir(tmpdir):
        real = os.path.realpath(tmpdir)
        if real not in ("/", _TMP) and not _TMP.startswith(real.rstrip("/") + "/"):
            found.append(real)
    return found


def _held_read_only(
    paths: Iterable[Path],
    hidden: Sequence[Path],
    readable: Sequence[Path],
    writable: Sequence[Path],
) -> list[Path]:
    """Of ``paths`` (the repository's local remotes), those a writable mount would open, to
    seal read-only: the deepest mount holding each decides (a hidden one keeps it hidden, a
    seal would show it; a read-only one keeps it read-only). One above another mount is
    read-only already but for that mount, which a seal would cover: left as it is."""
    mounts = [
        *((p, "hide") for p in hidden),
        *((p, "read") for p in readable),
        *((p, "write") for p in writable),
    ]
    found = []
    for path in _existing(paths):
        holding = [(len(m.parts), kind) for m, kind in mounts if _within(path, m)]
        if not holding or max(holding)[1] != "write":
            continue
        if any(_within(m, path) and m != path for m, _kind in mounts):
            continue
        found.append(path)
    return found


def _within(path: Path, top: Path) -> bool:
    return path == top or top in path.parents


def _runtime() -> list[str]:
    """The user's runtime directories: their ssh and gpg agents' sockets, their keyring's and
    session bus's, through which a CLI could sign, push or read secrets as the user."""
    found = [os.environ.get("XDG_RUNTIME_DIR", ""), f"/run/user/{os.getuid()}"]
    agent = os.path.dirname(os.environ.get("SSH_AUTH_SOCK", ""))
    if len(Path(agent).parts) >= 3:  # its own directory, never a system one such as /run
        found.append(agent)
    return [path for path in found if path and os.path.isdir(path)]


def _there(path: Path) -> list[Path]:
    """``path`` when it exists: hiding one that does not would make it (as a mount point) in a
    repository no run has used yet, which a goal plan promises to leave as it is."""
    return [path] if os.path.lexists(path) else []


def _existing(paths: Iterable[Path]) -> list[Path]:
    """``paths`` that are there, normalized: a bind needs its source to exist."""
    return [_norm(path) for path in paths if os.path.exists(path)]


def _norm(path: str | Path) -> Path:
    return Path(os.path.normpath(os.path.abspath(path)))


def _needed_to_start(executable: str | None, env: Mapping[str, str]) -> tuple[Path, ...]:
    """The executable (as found and as resolved), its ``#!`` interpreter, and the PATH: looked
    at once per process, executable and PATH (a dozen ``realpath``s and a read at every CLI
    start otherwise), as the programs themselves are found (``process.env.program``): a
    program that moves mid-run does not change how the run's CLIs are confined."""
    return _needed(executable, env.get("PATH"))


@functools.lru_cache(maxsize=64)
def _needed(executable: str | None, search: str | None) -> tuple[Path, ...]:
    env = {} if search is None else {"PATH": search}
    found: list[Path] = []
    if executable:
        found += [_norm(executable), _norm(os.path.realpath(executable))]
        interpreter = _shebang(os.path.realpath(executable), env)
        if interpreter:
            found += [_norm(interpreter), _norm(os.path.realpath(interpreter))]
    found += [_norm(entry) for entry in env.get("PATH", "").split(os.pathsep) if entry]
    # The orchestrator's own interpreter: an adapter's program is often a script run by it
    # (``sys.executable``), a wrapper that names it only inside its text among them.
    for own in (sys.executable, sys.prefix, sys.base_prefix):
        if own:
            found += [_norm(own), _norm(os.path.realpath(own))]
    return tuple(found)


def _shebang(path: str, env: Mapping[str, str]) -> str | None:
    try:
        with open(path, "rb") as handle:
            first = handle.readline(512)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode("utf-8", "replace").split()
    if not words:
        return None
    if os.path.basename(words[0]) == "env":
        rest = [word for word in words[1:] if not word.startswith("-")]
        return shutil.which(rest[0], path=env.get("PATH")) if rest else None
    return words[0]


def _tops_under(hidden: Sequence[Path], needed: Iterable[Path]) -> list[Path]:
    """For each needed path under a hidden directory, that directory's first entry on the way
    (``~/.nvm`` for ``~/.nvm/versions/node/v22/bin/node``), when it exists."""
    # On the paths' strings (a Path's is normalized, parts joined by one separator): the
    # pathlib comparison cost more than the rest of a CLI's plan, for a few dozen pairs.
    roots = [(root, str(root).rstrip(os.sep) + os.sep) for root in hidden]
    tops: list[Path] = []
    for path in needed:
        text = str(path)
        for root, prefix in roots:
            if text != str(root) and text.startswith(prefix):
                top = root / text[len(prefix) :].split(os.sep, 1)[0]
                if top not in tops and os.path.exists(top):
                    tops.append(top)
    return tops


# Version managers that keep toolchains, never logins: one a command needs is shown whole (a
# pyenv shim runs ``~/.pyenv/libexec``, not only what PATH names).
TOOLCHAINS = (
    ".pyenv",
    ".rbenv",
    ".nodenv",
    ".goenv",
    ".asdf",
    ".nvm",
    ".volta",
    ".sdkman",
    ".rustup",
)
# Keys, tokens and logins of the user's tools and CLIs: hidden from a command even inside a
# path it is shown (a ``sandbox.read: [~/.config]`` given for the CLIs shows no ``~/.config/gh``
# to a test).
SECRET_PLACES = (
    ".ssh", ".gnupg", ".aws", ".azure", ".kube", ".docker", ".netrc", ".git-credentials",
    ".config/gh", ".config/gcloud", ".config/hub", ".npmrc", ".pypirc", ".env",
    ".pgpass", ".vault-token", ".my.cnf", ".cargo/credentials.toml", ".cargo/credentials",
    ".config/rclone", ".terraform.d", ".config/pip", ".pip", ".gem/credentials",
    ".bash_history", ".zsh_history", ".python_history", ".psql_history", ".mysql_history",
    ".local/share/keyrings", ".password-store",
    ".claude", ".claude.json", ".codex", ".gemini", ".qwen", ".aider",
    ".config/opencode", ".local/share/opencode",
)  # fmt: skip


def command_confinement(
    settings: SandboxSettings,
    reach: GitReach,
    *,
    workdir: Path,
    home: Path,
    argv: Sequence[str],
    env: Mapping[str, str],
    user_home: str | None = None,
) -> Confinement:
    """The plan for a command run for a session in its worktree (blocking): a verify or setup
    command, which runs code a CLI wrote, confined as that CLI is. Writable: the worktree and
    the session's private ``home`` (its HOME, caches and TMPDIR; never the user's
    ``~/.cache``), and the run config's ``write:`` paths. Hidden: the user's HOME whole, as
    ``/tmp`` and ``TMPDIR`` (private scratches), ``.council/`` and the user's runtime
    directories; shown read-only again: the repository's checkout, the ``read:`` paths, and of
    what lives under a hidden directory only the toolchains the command needs to start
    (``_toolchains``: the PATH's directories and the executable's, not their neighbours).
    git's setup and the repository's local remotes are sealed as for a CLI; nothing of git is
    writable. What lies under a shown path at one of ``SECRET_PLACES`` of the user's HOME stays
    hidden. Under ``network: model`` the command gets no network at all: it has no model to
    reach, and the proxy that is the CLI's way out serves the CLI's launch alone."""
    user_home = user_home if user_home is not None else os.path.expanduser("~")
    places: list[str | Path] = [user_home, *_temporary(), *_there(reach.council_dir)]
    places += _runtime()
    hidden = [_norm(path) for path in places if path]
    hidden = [path for path in dict.fromkeys(hidden) if path != Path("/")]
    executable = shutil.which(argv[0], path=env.get("PATH")) if argv else None
    readable = [_norm(reach.repo_root), *_existing(settings.read)]
    readable += _toolchains(hidden, _needed_to_start(executable, env))
    writable = [_norm(workdir), _norm(home), *_existing(settings.write)]
    sealed = _existing(reach.sealed) + _held_read_only(reach.remotes, hidden, readable, writable)
    secrets = _secrets_inside(user_home, hidden, [*readable, *writable])
    return Confinement(
        workdir=_norm(workdir),
        hidden=tuple(hidden),
        readable=tuple(readable),
        writable=tuple(writable),
        sealed=tuple(sealed),
        network=settings.network and not settings.only_model,
        executable=executable or (argv[0] if argv else ""),
        limits=settings.limits,
        mounts=_mounts(hidden, readable, writable, sealed, secrets),
    )


def _toolchains(hidden: Sequence[Path], needed: Iterable[Path]) -> list[Path]:
    """What of a hidden directory a command needs to start, read-only: for each needed path
    under one, a version manager's whole directory (``TOOLCHAINS``); else the prefix of a
    ``bin`` directory two levels down or deeper (``~/.nvm/versions/node/v22`` for its
    ``bin/node``, a pipx venv); else the directory itself (``~/.cargo/bin``, ``~/.local/bin``:
    never ``~/.cargo``, whose ``credentials.toml`` sits beside it); a file right in the hidden
    directory alone."""
    shown: list[Path] = []
    for path in needed:
        around = [root for root in hidden if path != root and path.is_relative_to(root)]
        if not around:
            continue
        root = max(around, key=lambda top: len(top.parts))  # the HOME, not the /tmp it is in
        parts = path.relative_to(root).parts
        if parts[0] in TOOLCHAINS:
            top = root / parts[0]
        else:
            folder = parts if os.path.isdir(path) else parts[:-1]
            if not folder:
                top = path
            elif folder[-1] == "bin" and len(folder) >= 3:
                top = root.joinpath(*folder[:-1])
            else:
                top = root.joinpath(*folder)
        if top not in shown and os.path.exists(top):
            shown.append(top)
    return shown


def _secrets_inside(user_home: str, hidden: Sequence[Path], shown: Sequence[Path]) -> list[Path]:
    """``SECRET_PLACES`` of the user's HOME that a command would see: there, and under a shown
    path with no hidden one deeper on the way (one inside the hidden HOME needs no mount)."""
    if not user_home or user_home == "/":
        return []
    home = _norm(user_home)
    found: list[Path] = []
    for place in (home / relative for relative in SECRET_PLACES):
        around = [top for top in (*hidden, *shown) if place.is_relative_to(top)]
        deepest = max(around, key=lambda top: len(top.parts), default=None)
        if deepest is not None and deepest not in hidden and os.path.lexists(place):
            found.append(place)
    return found
