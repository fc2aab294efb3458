"""Which file a run config was read from: ``ConfigOrigin`` (its path and the digest of its
text), kept on the ``RunConfig`` that ``config.load`` read (``origin_of``).

A session records the origin of the config that started it (``scheduler.session.opening``),
so every command given FILE acts on that config's runs (``run.stores.run_sessions``), not on
the newest run of FILE's repository, which another config (a goal's, a second run's) may have
started. A config built from text (the Python API, ``parse_config``) has none: its runs are
recorded without one, and such a config acts on every run of its store, as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

__all__ = [
    "SESSION_KEY",
    "ConfigOrigin",
    "of_config",
    "origin_of",
    "recorded_origin",
    "set_origin",
]

_KEY = "_origin"
SESSION_KEY = "config"  # session metadata: the origin of the config that started it


@dataclass(frozen=True)
class ConfigOrigin:
    """A run config's file: its absolute path (symbolic links resolved) and the SHA-256 of
    the text read."""

    path: str
    digest: str

    @classmethod
    def of(cls, file: Path, text: str) -> ConfigOrigin:
        import hashlib  # only where a config is read: status's quick look never needs it

        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return cls(str(file.resolve()), digest)

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "digest": self.digest}


def set_origin(config: Any, origin: ConfigOrigin) -> None:
    """Keep ``origin`` on ``config`` (a ``RunConfig``'s private attribute: not a field, never
    dumped)."""
    setattr(config, _KEY, origin)


def origin_of(config: Any) -> ConfigOrigin | None:
    """The origin kept on ``config``; None for a config not read from a file."""
    found = getattr(config, _KEY, None)
    return found if isinstance(found, ConfigOrigin) else None


def recorded_origin(metadata: Mapping[str, Any]) -> ConfigOrigin | None:
    """The origin a session's ``metadata`` records (``as_dict``); None for a session started
    from no file or before sessions recorded one."""
    found = metadata.get(SESSION_KEY)
    if not isinstance(found, Mapping):
        return None
    path, digest = found.get("path"), found.get("digest")
    if not isinstance(path, str) or not isinstance(digest, str):
        return None
    return ConfigOrigin(path, digest)


class _Recorded(Protocol):
    @property
    def metadata(self) -> Mapping[str, Any]: ...


_S = TypeVar("_S", bound=_Recorded)


def of_config(sessions: Sequence[_S], origin: ConfigOrigin | None) -> list[_S]:
    """The ``sessions`` started from the config file of ``origin`` (its path: an edited file
    goes on with the same runs), and those that record no file (started before sessions
    recorded one, or from a config built in Python); all of them when ``origin`` is None."""
    if origin is None:
        return list(sessions)
    kept = []
    for session in sessions:
        recorded = recorded_origin(session.metadata)
        if recorded is None or recorded.path == origin.path:
            kept.append(session)
    return kept
