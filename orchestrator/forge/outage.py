"""A forge that fails the same way poll after poll, said once: ``Outage``.

``council serve`` polls the forge every few seconds from two places (the issue sources and the
steering commands); an unreachable forge used to be two warnings on every poll. Every reader of
one forge shares its ``Outage`` (``outage_of``): an error is said the first time it is met, not
again while the forge keeps failing with it, and once a call is answered again that is said
once too, so the next failure is news again.
"""

from __future__ import annotations

import weakref

__all__ = ["Outage", "outage_of"]


class Outage:
    """The errors said while the forge fails (module doc)."""

    def __init__(self) -> None:
        self._said: set[str] = set()

    def failed(self, error: str) -> bool:
        """The forge failed with ``error``: True when that is news (to be said)."""
        if error in self._said:
            return False
        self._said.add(error)
        return True

    def answered(self) -> bool:
        """A call was answered: True when the forge was failing until now (to be said)."""
        was = bool(self._said)
        self._said.clear()
        return was


_OUTAGES: weakref.WeakKeyDictionary[object, Outage] = weakref.WeakKeyDictionary()


def outage_of(forge: object) -> Outage:
    """The ``Outage`` every reader of ``forge`` shares."""
    found = _OUTAGES.get(forge)
    if found is None:
        found = _OUTAGES[forge] = Outage()
    return found
