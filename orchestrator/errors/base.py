"""The root of the error tree: what CLI Council raises on purpose."""

from __future__ import annotations

__all__ = ["CouncilError"]


class CouncilError(Exception):
    """Base of every error CLI Council raises on purpose."""
