"""Worker-thread hops counted: each ``anyio.to_thread.run_sync`` call the code under test makes,
the function it hands over (what the hop-counting tests assert on)."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import pytest


def count_hops(patch: pytest.MonkeyPatch) -> list[object]:
    """From now on (until ``patch`` undoes it), every worker-thread call's function, in order."""
    hopped: list[object] = []
    real = anyio.to_thread.run_sync

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        hopped.append(fn)
        return await real(fn, *args, **kwargs)

    patch.setattr(anyio.to_thread, "run_sync", counted)
    return hopped
