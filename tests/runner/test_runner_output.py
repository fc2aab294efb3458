"""Whatever a CLI prints, memory and the log stay bounded and decoding never fails."""

from __future__ import annotations

import gc
from pathlib import Path

import anyio

from orchestrator.adapter import AdapterRequest, AgentEvent, EventKind, Usage
from orchestrator.process.output import LINE_CAP, LOG_LIMIT, LineSplitter, LogSink
from orchestrator.runner.cli_run import CliRun, run_cli
from orchestrator.runner.event_tail import EventTail
from orchestrator.safety.redaction import Redactor
from orchestrator.testing.fake_cli import FakeAdapter, FakeCli, event_line

MiB = 1024 * 1024
MEMORY_BOUND = 64 * MiB  # measured growth is about 5 MiB; anything near a flood's size fails


def rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def run_measured(cli: FakeCli, tmp_path: Path) -> tuple[CliRun, int]:
    """Run ``cli`` while sampling this process's resident memory; return the peak growth."""
    (tmp_path / "work").mkdir(exist_ok=True)
    request = AdapterRequest(prompt="x", workdir=tmp_path / "work", home=tmp_path / "home")
    gc.collect()
    baseline = peak = rss()

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, rss())
            await anyio.sleep(0.005)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(sample)
        run = await run_cli(FakeAdapter({"argv": cli.argv()}), request, log_dir=tmp_path / "logs")
        tasks.cancel_scope.cancel()
    return run, max(peak, rss()) - baseline


async def test_a_flood_of_output_keeps_memory_bounded_and_the_log_capped(
    tmp_path: Path,
) -> None:
    # 256 MiB: four times the memory bound and five times the log's cap, so a reader that
    # kept the output or a log that grew with it fails; a gigabyte proved nothing more and
    # took two minutes on a loaded CI machine.
    flood = 4 * MEMORY_BOUND
    assert flood > 4 * LOG_LIMIT
    run, growth = await run_measured(FakeCli(flood=flood, flood_line=MiB), tmp_path)
    assert run.outcome.ok and run.lines == flood // MiB
    assert growth < MEMORY_BOUND, f"memory grew {growth / MiB:.0f} MiB"
    assert all(len(event.text) <= 4097 for event in run.events)  # each MiB line slimmed
    size = run.log_path.stat().st_size
    assert run.log_truncated and LOG_LIMIT - MiB < size < LOG_LIMIT + 4096
    with run.log_path.open("rb") as log:
        log.seek(-300, 2)
        assert b"[log truncated] after " in log.read()


async def test_one_50_mb_line_without_a_newline_is_cut_not_buffered(tmp_path: Path) -> None:
    run, growth = await run_measured(FakeCli(long_line=50 * MiB), tmp_path)
    assert growth < MEMORY_BOUND, f"memory grew {growth / MiB:.0f} MiB"
    assert (run.lines, run.truncated_lines) == (1, 1)
    (event,) = run.events
    assert event.kind is EventKind.RAW and len(event.text) <= 4097  # kept slimmed
    log = run.log_path.read_bytes()
    assert f"[line truncated: {49 * MiB} more bytes]".encode() in log
    assert LINE_CAP < len(log) < LINE_CAP + 4096


async def test_many_short_lines_keep_a_bounded_tail_with_the_significant_events(
    tmp_path: Path,
) -> None:
    lines = [
        event_line("started", native_session_id="native-9"),
        *[event_line("message", f"m{n}", usage={"output_tokens": 1}) for n in range(1000)],
        event_line("completed", "final answer", usage={"output_tokens": 5}),
    ]
    run, _ = await run_measured(FakeCli(lines=lines), tmp_path)
    assert run.native_session_id == "native-9" and run.outcome.message == "final answer"
    assert run.outcome.usage is not None and run.outcome.usage.output_tokens == 1005
    assert len(run.events) < 600 and run.dropped_events >= 500


async def test_invalid_utf8_is_replaced_and_parsing_goes_on(tmp_path: Path) -> None:
    cli = FakeCli(invalid_utf8=True, lines=[event_line("completed", "fine")])
    run, _ = await run_measured(cli, tmp_path)
    raw = [event.text for event in run.events if event.kind is EventKind.RAW]
    assert raw == ["bad \ufffd\ufffd \ufffd( bytes", "after the bad line"]
    assert run.outcome.ok and run.outcome.message == "fine"


# -- the pieces --------------------------------------------------------------------------------


def test_line_splitter_joins_across_chunks_and_caps_long_lines() -> None:
    splitter = LineSplitter(cap=8)
    assert splitter.feed(b"ab") == []
    assert splitter.feed(b"c\nde\r\nf") == [(b"abc", 0), (b"de\r", 0)]
    assert splitter.feed(b"0123456789") == []
    assert splitter.feed(b"xyz\nshort\n") == [(b"f0123456", 6), (b"short", 0)]
    assert splitter.finish() is None
    assert splitter.feed(b"tail") == [] and splitter.finish() == (b"tail", 0)
    assert LineSplitter(cap=4).feed(b"toolong\n") == [(b"tool", 3)]


def test_event_tail_keeps_session_final_and_usage_when_it_lets_go() -> None:
    tail = EventTail(significant=3, ordinary=5, slim_above=100)
    tail.add(AgentEvent(kind=EventKind.STARTED, native_session_id="n1"), 10)
    for n in range(20):
        tail.add(AgentEvent(kind=EventKind.MESSAGE, text=f"m{n}", usage=Usage(input_tokens=1)), 10)
        tail.add(AgentEvent(kind=EventKind.ERROR, text=f"e{n}"), 10)
    final = AgentEvent(kind=EventKind.COMPLETED, text="answer " * 5000, data={"raw": "x" * 9000})
    tail.add(final, 50_000)
    events = tail.events()
    assert events[0].kind is EventKind.USAGE and events[0].usage == Usage(input_tokens=15)
    assert events[1].native_session_id == "n1" and events[1].usage is None
    assert [e.text for e in events if e.kind is EventKind.MESSAGE] == [
        f"m{n}" for n in range(15, 20)
    ]
    assert events[-1] is final  # the final answer stays whole even though its line was huge
    assert len(events) == 2 + 5 + 3 and tail.dropped == 15 + 19


def test_event_tail_slims_events_from_huge_lines() -> None:
    tail = EventTail(slim_above=1000)
    tail.add(AgentEvent(kind=EventKind.RAW, text="x" * 100_000, data={"big": "y" * 100_000}), MiB)
    (kept,) = tail.events()
    assert len(kept.text) == 4097 and kept.data == {"slimmed": True}


def test_redactor_masks_longest_first_and_cut_secret_prefixes() -> None:
    redact = Redactor(["sk-abcdef123456", "sk-abcdef", "abc", "-----BEGIN KEY\nLINE-TWO-9"])
    assert redact("key sk-abcdef123456 and sk-abcdef!") == "key *** and ***!"
    assert redact("abc is too short to hide") == "abc is too short to hide"
    assert redact("LINE-TWO-9") == "***"
    assert redact.cut_partial("head sk-abcd") == "head ***"
    assert redact.cut_partial("nothing here") == "nothing here"
    assert not Redactor([]) and not Redactor(["ab"])


def test_log_sink_touches_the_disk_only_when_created_and_caps(tmp_path: Path) -> None:
    sink = LogSink(tmp_path / "logs" / "x.log", 100, ["cli", "--key", "***"], tmp_path)
    assert not sink.path.parent.exists()
    sink.create()
    sink.line("stdout", "a first line", 0)
    sink.line("stderr", "e" * 200, 5)
    sink.line("stdout", "dropped", 0)
    sink.close("done")
    text = sink.path.read_text()
    assert "# argv: cli --key '***'" in text and "stdout| a first line" in text
    assert "[log truncated] after 21 bytes" in text and "dropped" not in text
    assert sink.truncated and text.endswith("# done\n")
    late = LogSink(tmp_path / "logs" / "y.log", 100, ["cli"], tmp_path)
    late.close("not started")
    assert late.path.read_text().endswith("# not started\n")


def test_a_full_disk_stops_the_log_not_the_run(tmp_path: Path) -> None:
    sink = LogSink(Path("/dev/full"), LOG_LIMIT, ["cli"], tmp_path)  # every write: ENOSPC
    sink.create()
    sink.line("stdout", "x" * 100_000, 0)  # more than the buffer, so it reaches the "disk"
    assert sink.truncated and sink.error is not None and "No space left" in sink.error
    sink.line("stdout", "ignored from now on", 0)
    sink.close("end")  # does not raise either


def test_a_log_directory_removed_between_runs_is_made_again(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    LogSink(logs / "a.log", LOG_LIMIT, ["cli"], tmp_path).close("first")
    (logs / "a.log").unlink()
    logs.rmdir()
    LogSink(logs / "b.log", LOG_LIMIT, ["cli"], tmp_path).close("second")
    assert (logs / "b.log").read_text().endswith("# second\n")
