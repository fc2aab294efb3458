"""How many plans goal mode asks for at most by default: light, so ``council run`` and
``council plan`` declare their ``--rounds`` (``cli.goal_options``) without importing goal mode
(``run.goal``, which uses it)."""

from __future__ import annotations

__all__ = ["DEFAULT_ROUNDS"]

DEFAULT_ROUNDS = 2
