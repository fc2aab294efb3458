"""The secrets this process knows (``orchestrator.safety.secret_mask``), kept to one test.

``secret_mask`` remembers, for the life of the process, every secret handed to a child (a
CLI's keys, a verify command's passthrough): from then on it is masked in everything stored.
That is right for ``council``, a process that runs one configuration, but a pytest worker
runs thousands of tests, each with secrets of its own, and remembered them all: every later
record, event and CLI line was searched for each of them in every form (measured: the runner's
256 MiB flood test took 0.3 s alone and 22.7 s after the other runner tests, 26 s in the
suite at two workers and 72 s at three, all of it in the search). ``kept_to_one_test`` puts
the remembered secrets back as they were when the test began; a test sees the secrets its own
code handed out, as a ``council`` process does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

from orchestrator.safety import secret_mask

__all__ = ["kept_to_one_test"]


@contextmanager
def kept_to_one_test() -> Iterator[None]:
    with secret_mask._guard:
        remembered = set(secret_mask._remembered)
        names = dict(secret_mask._names)
    try:
        yield
    finally:
        with secret_mask._guard:
            secret_mask._remembered.clear()
            secret_mask._remembered.update(remembered)
            secret_mask._names.clear()
            secret_mask._names.update(names)
            # Read again at the next use: what was known is not what is known now.
            secret_mask._known = dataclasses.replace(secret_mask._known, size=-1)
