"""The continuous collision radar: which live sessions are changing the same code.

``hunks`` reads a ``git diff -U0`` into each file's changed line ranges (pure); ``overlap``
compares two sessions' ranges (pure) and grades the pair; ``snapshot`` reads a session's
diff against its base from its worktree without disturbing the CLI working in it;
``records`` is the ``Collision`` and ``SessionSighting`` records kept in the state store
(team-wide on PostgreSQL), with the public reads ``collisions`` and ``collisions_for``;
``warning`` is what a session's next prompt is told; ``engine`` (``Radar``) keeps each live
session's last snapshot and recomputes only the pairs of a session that moved.
"""
