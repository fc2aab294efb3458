"""``council doctor``'s line about the state store's health (``StateStore.health``): its
problems fail the check (a damaged record, a disk about to fill), its warnings are said in the
line (a stale lock, an oversized record); ``council state health`` shows the whole report."""

from __future__ import annotations

from orchestrator.run.doctor.checklist import Check
from orchestrator.state.health import StoreHealth

__all__ = ["health_check"]

_GROUP = "state"
_NAME = "state health"


def health_check(report: StoreHealth) -> Check:
    problems = [f.text for f in report.findings if f.level == "problem"]
    if problems:
        return Check.fail(
            _GROUP,
            _NAME,
            "; ".join(problems),
            "`council state health FILE` shows the whole report; `council state verify FILE` "
            "recovers damaged records from their history",
        )
    records = sum(n for kind, n in report.record_counts.items() if kind != "counters")
    said = [f"{records} records", f"event log {report.event_log_bytes // 1024} KiB"]
    age = report.last_checkpoint_age
    if age is not None:
        said.append(f"last checkpoint {round(age)}s ago")
    free = report.backend_details.get("free_disk_bytes")
    if isinstance(free, int):
        said.append(f"{free // (1024 * 1024)} MiB free")
    latency = report.backend_details.get("latency_ms")
    if latency is not None:
        said.append(f"{latency} ms round trip")
    warnings = [f.text for f in report.findings if f.level == "warning"]
    detail = ", ".join(said) + "".join(f"; warning: {text}" for text in warnings)
    return Check.ok(_GROUP, _NAME, detail)
