"""Replaying recorded CLI output through an adapter, for the golden adapter tests.

``tests/support/transcripts/<cli>/`` holds real output of the real CLIs (copied from the shared
reference recordings; see its README.md): ``<case>.stdout.txt``, ``<case>.stderr.txt`` and
``<case>.meta.json`` with the exit code (``"timeout"`` when the recorder had to stop the CLI).
Each line goes through ``parse_line`` with its stream, then ``classify`` sees the whole run,
exactly as the runner would drive the adapter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.adapter import Adapter, AgentEvent, EventKind, Outcome, ProcessResult

TRANSCRIPTS = Path(__file__).parent / "transcripts"


@dataclass(frozen=True)
class Replay:
    events: list[AgentEvent]
    outcome: Outcome
    meta: dict[str, Any]
    result: ProcessResult

    def of(self, kind: EventKind) -> list[AgentEvent]:
        return [e for e in self.events if e.kind == kind]

    @property
    def session_ids(self) -> set[str]:
        return {e.native_session_id for e in self.events if e.native_session_id}


def cases(cli: str) -> list[str]:
    return sorted(
        p.name.removesuffix(".meta.json") for p in (TRANSCRIPTS / cli).glob("*.meta.json")
    )


def process_result(meta: dict[str, Any], stderr: str) -> ProcessResult:
    code = meta["rc"]
    if code == "timeout":
        return ProcessResult(
            exit_code=None, timed_out=True, seconds=float(meta["secs"]), stderr_tail=stderr[-2000:]
        )
    return ProcessResult(
        exit_code=int(code), seconds=float(meta["secs"]), stderr_tail=stderr[-2000:]
    )


def replay(adapter: Adapter, cli: str, case: str) -> Replay:
    base = TRANSCRIPTS / cli / case
    meta = json.loads(base.with_name(f"{case}.meta.json").read_text(encoding="utf-8"))
    events: list[AgentEvent] = []
    stderr = base.with_name(f"{case}.stderr.txt").read_text(encoding="utf-8")
    for stream, body in (
        ("stdout", base.with_name(f"{case}.stdout.txt").read_text(encoding="utf-8")),
        ("stderr", stderr),
    ):
        for line in body.splitlines():
            produced = adapter.parse_line(line, stream)  # type: ignore[arg-type]
            assert isinstance(produced, list)
            events.extend(produced)
    result = process_result(meta, stderr)
    return Replay(events, adapter.classify(result, events), meta, result)
