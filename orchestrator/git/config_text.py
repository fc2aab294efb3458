"""What a change to a git config file added and removed, for a human: ``describe_change``
names its settings (``core.hookspath=/x``), read with a reader for messages, not git's full
grammar."""

from __future__ import annotations

__all__ = ["describe_change"]


def describe_change(before: bytes | None, now: bytes | None) -> str:
    """The settings ``now`` adds to and removes from ``before`` (both git config files)."""
    old, new = _settings(before), _settings(now)
    added = [entry for entry in new if entry not in old]
    removed = [entry for entry in old if entry not in new]
    parts = []
    if added:
        parts.append("added " + ", ".join(added[:8]) + (" ..." if len(added) > 8 else ""))
    if removed:
        parts.append("removed " + ", ".join(removed[:8]) + (" ..." if len(removed) > 8 else ""))
    return "; ".join(parts) or "rewritten (the same settings, in another form)"


def _settings(data: bytes | None) -> list[str]:
    """``section.key=value`` entries of a git config file (a reader for messages, not git's
    full grammar: enough to name what a change added)."""
    if data is None:
        return []
    section = ""
    entries: list[str] = []
    for raw in data.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            header = line[1 : line.find("]")] if "]" in line else line[1:]
            name, _, sub = header.partition(" ")
            section = name.lower() + (f".{sub.strip().strip(chr(34))}" if sub else "")
            line = line[line.find("]") + 1 :].strip() if "]" in line else ""
            if not line:
                continue
        key, _, value = line.partition("=")
        entries.append(f"{section}.{key.strip().lower()}={value.strip()}"[:200])
    return entries
