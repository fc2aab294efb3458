"""A known secret written over several lines (a terminal's wrap, ``base64 -w 12``, a JSON string
with a line break in it) is masked in a CLI's log and in the events parsed from it: lines are
held back only while their end could start a secret, and released masked
(``orchestrator.safety.secret_lines``, ``runner.reader``). Against a real CLI process."""

from __future__ import annotations

import base64
import json
import secrets
import sys
import textwrap
from pathlib import Path

import anyio

from orchestrator.adapter import AdapterRequest
from orchestrator.runner.cli_run import run_cli
from orchestrator.safety import secret_mask
from orchestrator.safety.secret_forms import forms
from orchestrator.safety.secret_lines import MAX_HELD, LineHold
from orchestrator.safety.secret_stream import squeeze
from orchestrator.testing.fake_cli import FakeAdapter


def token() -> str:
    return f"wrapTok{secrets.token_hex(16)}"


def needles_of(value: str) -> tuple[bytes, ...]:
    return tuple(form.needle for form in forms(value))


def wrapped(text: str, width: int) -> list[str]:
    return [text[at : at + width] for at in range(0, len(text), width)]


def leaks(data: bytes, value: str) -> list[bytes]:
    """The forms of ``value`` found in ``data`` with its whitespace taken out."""
    flat = squeeze(data.replace(b"\\n", b""))
    return [needle for needle in needles_of(value) if squeeze(needle) in flat]


def run_lines(hold: LineHold[int], batches: list[list[str]]) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    count = 0
    for batch in batches:
        items = [(text, count + i) for i, text in enumerate(batch)]
        count += len(batch)
        out += hold.feed(items)
    return out + hold.finish()


def test_a_token_wrapped_over_two_lines_is_masked_across_reads() -> None:
    value = token()
    hold: LineHold[int] = LineHold(lambda: needles_of(value))
    head, tail = value[:20], value[20:]
    assert hold.feed([("before", 0), (f"key: {head}", 1)]) == [("before", 0)]
    assert hold.held == 1  # its end could start the token: held
    released = hold.feed([(f"{tail} after", 2), ("next", 3)])
    assert released == [("key: ***", 1), (" after", 2), ("next", 3)]
    assert hold.held == 0 and hold.finish() == []


def test_base64_at_any_width_and_json_forms_are_masked_line_by_line() -> None:
    value = token() + "/+"  # a slash: its JSON form differs
    for width in (1, 5, 12, 76):
        hold: LineHold[int] = LineHold(lambda: needles_of(value))
        encoded = base64.b64encode(b"prefix:" + value.encode()).decode()
        lines = ["start", *wrapped(encoded, width), "end"]
        out = run_lines(hold, [[line] for line in lines])
        assert [payload for _, payload in out] == list(range(len(lines)))  # in order, all
        assert not leaks("\n".join(text for text, _ in out).encode(), value), width
    escaped = json.dumps(value)[1:-1]
    hold = LineHold(lambda: needles_of(value))
    out = run_lines(hold, [[f'"{escaped[:9]}'], [f"   {escaped[9:]}"]])
    assert not leaks("\n".join(text for text, _ in out).encode(), value)


def test_nothing_is_held_when_no_secret_is_known_or_no_tail_matches() -> None:
    none: LineHold[int] = LineHold(lambda: ())
    lines = [(f"line {n}", n) for n in range(100)] + [(f"a {token()[:20]}", 100)]
    assert none.feed(lines) == lines and none.held == 0
    value = token()
    some: LineHold[int] = LineHold(lambda: needles_of(value))
    plain = [("ordinary text, nothing of a key", n) for n in range(100)]
    assert some.feed(plain) == plain and some.held == 0


def test_a_prefix_followed_by_blank_lines_holds_at_most_max_held() -> None:
    value = token()
    hold: LineHold[int] = LineHold(lambda: needles_of(value))
    released = hold.feed([(value[:10], 0)])
    for n in range(1, MAX_HELD + 50):
        released += hold.feed([("", n)])
    assert hold.held <= MAX_HELD
    released += hold.feed([(value[10:], MAX_HELD + 50)]) + hold.finish()
    assert [payload for _, payload in released] == list(range(MAX_HELD + 51))


def test_the_log_and_events_of_a_real_cli_hold_no_wrapped_token(tmp_path: Path) -> None:
    value = token()
    secret_mask.remember([value])
    encoded = base64.b64encode(b"x" + value.encode()).decode()
    script = textwrap.dedent(
        f"""
        import json, sys
        value, encoded = {value!r}, {encoded!r}
        for stream in (sys.stdout, sys.stderr):
            print("key: " + value[:17], file=stream, flush=True)
            print(value[17:] + " done", file=stream, flush=True)
            for at in range(0, len(encoded), 12):
                print(encoded[at:at + 12], file=stream, flush=True)
        said = {{"kind": "message", "text": value[:9] + "\\n" + value[9:]}}
        print(json.dumps({{"event": said}}), flush=True)
        print(value[:30], end="", flush=True)
        """
    )
    (tmp_path / "work").mkdir()
    request = AdapterRequest(prompt="x", workdir=tmp_path / "work", home=tmp_path / "home")

    run = anyio.run(
        lambda: run_cli(
            FakeAdapter({"argv": [sys.executable, "-c", script]}), request, log_dir=tmp_path / "l"
        )
    )
    log = run.log_path.read_bytes()
    assert not leaks(log, value), log
    assert log.count(b"| key: ***") == 2 and b"done" in log
    events = json.dumps([event.model_dump(mode="json") for event in run.events]).encode()
    assert not leaks(events, value), events
