"""How the C allocator of this process keeps memory: in two arenas, not one per thread.

glibc's ``malloc`` gives a thread that allocates while another holds the arena an arena of its
own, up to eight a core, and memory freed in an arena stays in it for that arena's next
allocation. A run's store and git calls go through anyio's worker threads (up to 40), so the
memory of each ended task was left spread over many arenas, a little in each, and the
process grew by it: 64 KiB a task from 64 to 512 tasks, where two arenas hold it to about 30
(``bench/start_bench.py``). Python itself allocates under one lock anyway (the GIL), so fewer
arenas cost no waiting worth the name.

Like the subreaper, this is the ``council`` command's to do first thing, before any thread
starts; a program of your own that runs a ``Council`` may call ``Council.limit_arenas()``.
Elsewhere than glibc (musl, macOS) it does nothing and says so.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["ARENAS", "limit_arenas"]

_M_ARENA_MAX = -8  # mallopt's parameter, <malloc.h>
ARENAS = 2


def limit_arenas(count: int = ARENAS) -> bool:
    """At most ``count`` arenas for threads started from now on; False where there is no
    such setting (not glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return int(mallopt(_M_ARENA_MAX, count)) == 1
