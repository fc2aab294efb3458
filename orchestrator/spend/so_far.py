"""A call's usage so far, from the events its adapter parsed: what the meter follows while the
call runs (``meter``) and what a successor reads from its log when its orchestrator died
(``settle``), summed one way.

The CLI's own figures (``usage`` events, and any other event that carries usage, as the run
sums them) count whole; the ``running_usage`` increments said since the last of them count
too (one per step: a step said again, the same ``data["step"]``, replaces itself), and a
figure of the CLI's covers the steps before it (``EventKind.RUNNING_USAGE``).
"""

from __future__ import annotations

from orchestrator.adapter import AgentEvent, EventKind, Usage

__all__ = ["SoFar"]


class SoFar:
    def __init__(self) -> None:
        self._final: list[Usage] = []  # the CLI's own figures
        self._steps: dict[str, Usage] = {}  # running increments since the last of them
        self.heard = False  # any usage at all

    def add(self, event: AgentEvent) -> bool:
        """Count ``event``'s usage; False when it carries none."""
        if event.usage is None:
            return False
        if event.kind == EventKind.RUNNING_USAGE:
            step = event.data.get("step")
            key = step if isinstance(step, str) and step else f"#{len(self._steps)}"
            self._steps[key] = event.usage
        else:
            self._final.append(event.usage)
            self._steps.clear()  # covered by the CLI's own figure
        self.heard = True
        return True

    @property
    def final(self) -> bool:
        """Whether the sum is the CLI's own last word (no step said after its last figure)."""
        return bool(self._final) and not self._steps

    def parts(self) -> tuple[Usage, ...]:
        return (*self._final, *self._steps.values())

    def total(self) -> Usage | None:
        """The sum (its cost the CLI's, where each part said one); None: no usage heard."""
        if not self.heard:
            return None
        parts = self.parts()
        costs = [u.cost_usd for u in parts]
        return Usage(
            input_tokens=sum(u.input_tokens for u in parts),
            output_tokens=sum(u.output_tokens for u in parts),
            cache_read_tokens=sum(u.cache_read_tokens for u in parts),
            cache_write_tokens=sum(u.cache_write_tokens for u in parts),
            cost_usd=sum(c for c in costs if c is not None) if None not in costs else None,
        )
