"""What masking a CLI's log over line breaks costs per MiB, against writing the lines unmasked.

A CLI's log is written line by line (``process.output.LogSink``); ``safety.secret_lines``
masks a known secret written over several lines (``runner.reader``: each read's lines masked
as one text, the last held back while their end could start a secret). This bench feeds
``--mib`` MiB of output, in reads of 1 MiB cut into lines as the reader does, to a log in a
temporary directory, rounds alternating so machine noise hits every side alike:

- ``write``: the lines written to the log, nothing else (the baseline);
- ``none``: through ``LineHold`` with no secret known (what every run without a key pays);
- ``text``: through ``LineHold`` with ``--secrets`` secrets known, over base64 text wrapped at
  76 characters (random bytes: no secret in it, every tail looked at);
- ``write_json``: stream-json lines (below) written unmasked, the baseline of ``json``;
- ``json``: the same over stream-json lines whose strings hold escaped line breaks (each read
  searched twice: as written and with the escapes read as whitespace).

It prints the median seconds per MiB of each and its ratio to its baseline. No figure is
asserted anywhere; ``--json`` prints them for a script.

    python bench/log_mask_bench.py [--mib 64] [--rounds 5] [--secrets 3] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.process.output import LineSplitter, LogSink
from orchestrator.safety.secret_forms import forms
from orchestrator.safety.secret_lines import LineHold

MiB = 1024 * 1024


def _text(mib: int) -> bytes:
    wrapped = base64.encodebytes(os.urandom(mib * MiB * 3 // 4))
    return wrapped[: mib * MiB]


def _stream_json(mib: int) -> bytes:
    lines = []
    size = 0
    while size < mib * MiB:
        said = base64.b64encode(os.urandom(300)).decode()
        line = json.dumps({"type": "assistant", "text": f"{said[:200]}\n{said[200:]}\n"}) + "\n"
        lines.append(line.encode())
        size += len(line)
    return b"".join(lines)


def _feed(data: bytes, directory: Path, needles: Sequence[bytes] | None) -> float:
    sink = LogSink(directory / f"{secrets.token_hex(4)}.log", 1 << 40, ["cli"], directory)
    sink.create()
    splitter = LineSplitter()
    hold: LineHold[int] = LineHold(lambda: needles or ())
    start = time.perf_counter()
    for at in range(0, len(data), MiB):
        lines = [
            (raw.decode("utf-8", "replace"), n) for raw, n in splitter.feed(data[at : at + MiB])
        ]
        if needles is None:
            for text, dropped in lines:
                sink.line("stdout", text, dropped)
        else:
            for text, dropped in hold.feed(lines):
                sink.line("stdout", text, dropped)
    for text, dropped in hold.finish():
        sink.line("stdout", text, dropped)
    sink.close("done")
    spent = time.perf_counter() - start
    sink.path.unlink()
    return spent


def _base(side: str) -> str:
    return "write_json" if side.endswith("json") else "write"


def main(mib: int, rounds: int, count: int, as_json: bool) -> dict[str, object]:
    needles = tuple(
        form.needle for _ in range(count) for form in forms(f"sk-{secrets.token_hex(20)}")
    )
    text, stream = _text(mib), _stream_json(mib)
    sides = {
        "write": (text, None),
        "none": (text, ()),
        "text": (text, needles),
        "write_json": (stream, None),
        "json": (stream, needles),
    }
    spent: dict[str, list[float]] = {name: [] for name in sides}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            for name, (data, given) in sides.items():
                spent[name].append(_feed(data, Path(tmp), given) / (len(data) / MiB))
    per_mib = {name: statistics.median(times) for name, times in spent.items()}
    result: dict[str, object] = {
        "mib": mib,
        "rounds": rounds,
        "secrets": count,
        "needles": len(needles),
        "seconds_per_mib": per_mib,
        "ratio_to_write": {name: per_mib[name] / per_mib[_base(name)] for name in per_mib},
    }
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{mib} MiB, {rounds} rounds, {count} secrets ({len(needles)} needles)")
        for name, seconds in per_mib.items():
            base = _base(name)
            ratio = seconds / per_mib[base]
            print(f"  {name:10} {seconds * 1000:8.2f} ms/MiB   x{ratio:.2f} of {base}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--secrets", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="8 MiB, 3 rounds (CI)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    mib, rounds = (8, 3) if args.quick else (args.mib, args.rounds)
    if mib < 1 or rounds < 1 or args.secrets < 1:
        parser.error("--mib, --rounds and --secrets must be at least 1")
    main(mib, rounds, args.secrets, args.json)
