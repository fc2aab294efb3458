"""An example third-party adapter: drives ``echo``, which "answers" by repeating the prompt.

It shows the whole plugin contract in one module: an ``Adapter`` subclass with its options
model, the three pure methods, and the ``register_adapters`` hook that CLI Council finds
through the ``cli_council`` entry point declared in ``pyproject.toml``. Use it in a run config::

    adapters:
      parrot:
        type: echo-cli
        options: {prefix: "parrot says: "}

and check it with the shared suite (``orchestrator.testing.adapter_contract.AdapterContract``).
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import Field

from orchestrator.adapter import (
    Adapter,
    AdapterConfig,
    AdapterRequest,
    AgentEvent,
    CommandSpec,
    EventKind,
    Stream,
)
from orchestrator.plugins.hookspecs import hookimpl

__all__ = ["EchoCli", "register_adapters"]


class EchoCli(Adapter):
    name = "echo-cli"
    executable = "echo"
    can_choose_model = False
    edits_files = False

    class Config(AdapterConfig):
        prefix: str = Field(default="", max_length=200, description="printed before the prompt")

    config: Config

    def build_command(self, request: AdapterRequest) -> CommandSpec:
        # One argument, no shell; -E prints backslashes in the prompt as they are.
        return CommandSpec(argv=[self.binary, "-E", self.config.prefix + request.prompt])

    def parse_line(self, line: str, stream: Stream) -> list[AgentEvent]:
        if stream == "stderr":
            return [AgentEvent(kind=EventKind.ERROR, text=line, error_kind="cli")] if line else []
        # echo prints the answer and nothing else: every stdout line is part of it.
        return [AgentEvent(kind=EventKind.COMPLETED, text=line)]


@hookimpl
def register_adapters(register: Callable[[type[Adapter]], None]) -> None:
    register(EchoCli)
