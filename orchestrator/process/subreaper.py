"""Making this process the one a CLI's orphaned daemons are reparented to.

Apart from ``tree`` (which imports psutil), so that the ``council`` command can do it first
thing without paying for the process tables it may never read.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["become_subreaper", "is_subreaper"]

_PR_SET_CHILD_SUBREAPER = 36  # prctl options, <linux/prctl.h>
_PR_GET_CHILD_SUBREAPER = 37


def become_subreaper() -> bool:
    """Make this process the one orphaned descendants are reparented to (Linux
    ``PR_SET_CHILD_SUBREAPER``), so a double-forked daemon of a CLI stays findable; False
    where that is not possible."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def is_subreaper() -> bool:
    """Whether this process is a child subreaper now (``become_subreaper`` ran, here or in
    the program that uses the API); False where there is no such thing."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        flag = ctypes.c_int(0)
        if int(libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0)) != 0:
            return False
        return flag.value != 0
    except (OSError, AttributeError):
        return False
