"""Canary secrets: values put in the environment variables people keep their keys in, and the
search for them afterwards in everything a run stores.

A run started with ``CANARIES`` in its environment may show them to its CLIs (a CLI needs its
key), but ``leaks(repo)`` must find none of them, raw or JSON-escaped, in any git object of the
repository (the base branch, every ref, rescue refs, unreferenced objects too: an object a
merge wrote is as good as landed for whoever clones the packs) nor in any file under
``.council/`` (state, events, logs, handoffs, checkpoints, the worktrees' files).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

# Distinct, unguessable-looking values: a hit can only be a leak, never a coincidence.
CANARIES: dict[str, str] = {
    "ANTHROPIC_API_KEY": "sk-ant-api03-canaryAnthropic7Q2x9LmZ",
    "OPENAI_API_KEY": "sk-proj-canaryOpenAI4Vt8Rw1Kp",
    "GITHUB_TOKEN": "ghp_canaryGitHub5Hn3Jd8Xq2Ws",
    "GEMINI_API_KEY": "AIzaSy-canaryGemini6Bv2Nc9",
    "AWS_SECRET_ACCESS_KEY": "canaryAwsSecret/8Kd3+Lm2Pq",
    "DATABASE_PASSWORD": "canary-db-password-3Fz7Yt",
}


def forms(value: str) -> list[bytes]:
    """How a value can appear in a file: as it is, and JSON-escaped (``/`` as ``\\/``)."""
    escaped = json.dumps(value)[1:-1]
    return sorted({value.encode(), escaped.encode(), escaped.replace("/", "\\/").encode()})


def leaks(repo: Path, canaries: dict[str, str] = CANARIES) -> list[str]:
    """Where any canary is found (``name in where``); empty when nowhere."""
    needles = [(name, form) for name, value in canaries.items() for form in forms(value)]
    found: list[str] = []
    objects = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "--batch-all-objects", "--batch", "--unordered"],
        capture_output=True,
        check=True,
    ).stdout
    at = 0
    while at < len(objects):
        header_end = objects.index(b"\n", at)
        sha, kind, size = objects[at:header_end].decode().split()
        body = objects[header_end + 1 : header_end + 1 + int(size)]
        at = header_end + 1 + int(size) + 1
        found += [f"{name} in git {kind} {sha[:12]}" for name, form in needles if form in body]
    council = repo / ".council"
    for directory, _, files in os.walk(council):
        for file in files:
            path = Path(directory, file)
            if path.is_symlink() or not path.is_file():
                continue
            data = path.read_bytes()
            found += [
                f"{name} in {path.relative_to(repo)}" for name, form in needles if form in data
            ]
    return sorted(set(found))
