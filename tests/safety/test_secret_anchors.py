"""The credential detector's prefilter (``safety.secret_anchors``, the gates in
``safety.secret_detect``) never hides a line a rule would find something on: for every rule
(each detect-secrets plugin's regexes, the keyword plugin's for each file type, our shapes), lines
generated from the rule's own regexes that the rule finds something on are kept for that rule;
an anchor's matches never span lines; the diff is read the same at any chunk size."""

from __future__ import annotations

import base64
import json
import re
import string
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from detect_secrets.plugins import keyword
from detect_secrets.plugins.base import RegexBasedDetector
from detect_secrets.util.filetype import determine_file_type
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.git.merge_tree import GitCalls
from orchestrator.git.repo import Git
from orchestrator.merge import secret_added
from orchestrator.safety import secret_detect
from orchestrator.safety.secret_anchors import ANCHORS, ODD_CASE, KindAnchors, Sweep
from orchestrator.safety.secret_detect import Detector, Run
from tests.support.credential_values import aws_key, github_token, pgpass_line, vault_token
from tests.support.merge_repo import commit_on, git, init_repo

# A file of each type the keyword plugin has its own patterns for (Python's are also those of
# Markdown, JavaScript, Java... and of any type it does not know).
_PATHS = ("app.py", "main.go", "lib.c", "lib.cpp", "conf.yaml")


def _by_type(path: str) -> dict[re.Pattern[str], int]:
    return keyword.REGEX_BY_FILETYPE.get(
        determine_file_type(path), keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP
    )


def _found(line: str, path: str, kinds: frozenset[str] = secret_detect.KINDS) -> set[str]:
    """Which of ``kinds`` their rules find on ``line`` when run on it, nothing filtered first."""
    netrc = path.endswith("netrc")
    return {
        rule.kind
        for rule in secret_detect._built().rules
        if rule.kind in kinds
        and any(True for _ in secret_detect._values(rule, line, _by_type(path), netrc))
    }


def _kept(line: str, path: str) -> set[str]:
    """The kinds the prefilter lets the rules look for on ``line``: anchors, then gates."""
    kinds = secret_detect._SWEEP.lines(line.encode("utf-8", "surrogatepass")).get(0, set())
    words = secret_detect._keyword_gate_for(_by_type(path))
    return {rule.kind for rule in secret_detect._gated(kinds, line, words)}


def _one_line(text: str) -> str:
    """``text`` as the detector holds a line: one line, no trailing blanks."""
    return re.sub(r"[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]", " ", text).rstrip()


def _cases() -> Iterator[tuple[str, str, re.Pattern[str]]]:
    """(kind, path, pattern): each rule's own regexes, with a path whose type uses them."""
    for rule in secret_detect._built().rules:
        plugin = rule.plugin
        if isinstance(plugin, keyword.KeywordDetector):
            for path in _PATHS:
                for pattern in _by_type(path):
                    yield rule.kind, path, pattern
        elif isinstance(plugin, RegexBasedDetector):
            for pattern in plugin.denylist:
                yield rule.kind, "app.py", pattern
        else:
            assert rule.own is not None
            yield rule.kind, "home/.netrc", rule.own


_CASES = list(_cases())


def _lines_of(pattern: re.Pattern[str]) -> st.SearchStrategy[str]:
    whole = st.from_regex(pattern, fullmatch=True)
    return st.one_of(whole, st.from_regex(pattern), st.tuples(st.text(), whole).map("".join)).map(
        _one_line
    )


def _b64(data: str) -> str:
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


# The JWT plugin keeps only tokens whose parts decode to JSON: random text never does.
_JWTS = st.builds(
    lambda before, claims, signature, after: (
        f"{before}{_b64(json.dumps({'alg': 'HS256'}))}.{_b64(json.dumps(claims))}.{signature}"
        f"{after}"
    ),
    st.text(),
    st.dictionaries(st.text(), st.integers()),
    st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=8),
    st.text(),
).map(_one_line)


def _id(case: tuple[str, str, re.Pattern[str]]) -> str:
    kind, path, pattern = case
    return f"{kind}:{path}:{pattern.pattern[:24]}"


@pytest.mark.parametrize("case", _CASES, ids=[_id(case) for case in _CASES])
def test_a_line_a_rule_finds_is_kept_for_it(case: tuple[str, str, re.Pattern[str]]) -> None:
    kind, path, pattern = case
    # A positive sample generated from the rule's own regex (never written in the repository).
    only = frozenset({kind})
    lines = _JWTS if kind == "JSON Web Token" else _lines_of(pattern)
    found_some = []

    @settings(max_examples=100, deadline=None, derandomize=True, database=None)
    @given(lines)
    def kept_whenever_found(line: str) -> None:
        found = _found(line, path, only)
        assert found <= _kept(line, path), line
        found_some.extend(found)

    kept_whenever_found()
    assert found_some  # lines generated from the rule's regex that it finds something on


def _samples() -> dict[str, tuple[str, str]]:
    """One line of each kind, made fresh (kind: (path, line))."""
    pgpass, _password = pgpass_line()
    return {
        "AWS Access Key": ("app.py", f"KEY = '{aws_key()}'"),
        "GitHub Token": ("app.py", f"T = '{github_token()}'"),
        "Vault Token": ("app.py", f"V = '{vault_token()}'"),
        "PostgreSQL Password File Line": ("pgpass", pgpass),
        "Netrc Password": ("home/.netrc", "password Zq8" + "w2" * 6),
        "Secret Keyword": ("app.py", "db_pass" + 'word = "Zq8' + "w2" * 6 + '"'),
    }


@pytest.mark.parametrize("kind", sorted(_samples()))
def test_each_sample_is_found_and_kept(kind: str) -> None:
    path, line = _samples()[kind]
    assert kind in _found(line, path)
    assert kind in _kept(line, path)
    hits = Detector(allow=[]).lines(path, [(7, line)])
    assert (7, kind) in {(hit.line, hit.kind) for hit in hits}


def test_the_odd_case_letters_are_all_python_matches_with_an_ascii_one() -> None:
    letter = re.compile("(?i)[a-z]")
    odd = {chr(code) for code in range(0x80, 0x110000) if letter.match(chr(code))}
    assert odd == {raw.decode() for raw in ODD_CASE}


def test_a_keyword_written_with_an_odd_case_letter_is_still_looked_at() -> None:
    line = 'pa\u017fsword = "Zq8' + "w2" * 6 + '"'  # the long s: IGNORECASE takes it for s
    assert "Secret Keyword" in _found(line, "app.py")
    assert "Secret Keyword" in _kept(line, "app.py")
    assert [hit.kind for hit in Detector(allow=[]).lines("app.py", [(1, line)])] == [
        "Secret Keyword"
    ]


def test_every_kind_has_anchors_and_none_can_span_lines() -> None:
    assert set(ANCHORS) <= secret_detect.KINDS
    with pytest.raises(ValueError, match="could match a line break"):
        Sweep({"X": KindAnchors(cased=(rb"a.b",))})
    with pytest.raises(ValueError, match="has none"):
        Sweep({"X": KindAnchors()})
    with pytest.raises(ValueError, match="is not lower"):
        Sweep({"X": KindAnchors(folded=(rb"Key",))})


def test_anchors_sharing_a_first_byte_are_told_apart_on_each_line() -> None:
    sweep = Sweep(
        {
            "one": KindAnchors(cased=(rb"AKIA",)),
            "two": KindAnchors(cased=(rb"AC[a-z]{3}",)),
            "three": KindAnchors(folded=(rb"key",)),
        }
    )
    block = b"x AKIACabc y\nnothing\nACxyz and KEY\n"
    assert sweep.lines(block) == {0: {"one", "two"}, 21: {"two", "three"}}


def test_runs_and_lines_find_the_same() -> None:
    aws = aws_key()
    lines = [
        "plain",
        "# pragma: allowlist nextline secret",
        f"KEY = '{aws}'",
        f"OTHER = '{aws}'",
        "tail",
    ]
    numbered = list(enumerate(lines, start=10))
    by_lines = Detector(allow=[]).lines("a.py", numbered)
    text = "\n".join(lines).encode()
    by_runs = Detector(allow=[]).runs("a.py", [Run(10, text)])
    assert sorted(by_lines, key=repr) == sorted(by_runs, key=repr)
    assert [(hit.line, hit.kind) for hit in by_runs] == [(13, "AWS Access Key")]
    # The line above a run, when known, counts for its first line.
    above = Run(12, f"KEY = '{aws}'".encode(), before=b"# pragma: allowlist nextline secret")
    assert Detector(allow=[]).runs("a.py", [above]) == []


def _reference(repo: Path, base: str, tip: str) -> list[tuple[str, int, str]]:
    """What ``added`` must find: each added line of the diff read one by one."""
    out = subprocess.run(
        ["git", "-C", str(repo), "diff", "-U0", "--no-color", base, tip],
        capture_output=True,
        check=True,
    ).stdout
    numbered: dict[str, list[tuple[int, str]]] = {}
    path, number = "", 0
    in_hunk = False
    for raw in out.split(b"\n"):
        if in_hunk and raw.startswith(b"+"):
            numbered.setdefault(path, []).append((number, raw[1:].decode()))
            number += 1
        elif raw.startswith(b"diff --git "):
            in_hunk = False
        elif raw.startswith(b"+++ b/"):
            path = raw[6:].decode()
        elif raw.startswith(b"@@"):
            hunk = re.match(rb"@@ -[0-9,]+ \+([0-9]+)", raw)
            assert hunk is not None
            number, in_hunk = int(hunk.group(1)), True
    hits = [hit for name, rows in numbered.items() for hit in Detector(allow=[]).lines(name, rows)]
    return sorted((hit.path, hit.line, hit.kind) for hit in hits)


@pytest.mark.parametrize("chunk", [7, 64, 1 << 20])
def test_the_diff_is_read_the_same_at_any_chunk_size(
    tmp_path: Path, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws, github = aws_key(), github_token()
    pgpass, _password = pgpass_line()
    repo = init_repo(tmp_path / "repo", checked_out=False)
    old = "".join(f"line {n}\n" for n in range(40))
    base = commit_on(repo, "main", {"app.py": old, "gone.txt": "x\n"}, message="base")
    changed = old.replace("line 3\n", f"KEY = '{aws}'\n").replace("line 30\n", "")
    changed = changed.replace("line 20\n", "line 20\n" + "+" * 200 + f" T = '{github}'\n")
    tip = commit_on(
        repo,
        "council/t/1",
        {
            "app.py": changed + "no newline at the end",
            "ops/pgpass": f"# a\n{pgpass}\n",
            "long.txt": "y" * 300 + f" {aws}\n",
            "gone.txt": None,
        },
        start=base,
    )
    monkeypatch.setattr(secret_added, "_CHUNK", chunk)

    found = secret_added.added(GitCalls(Git(repo, None)), tip, base, Detector(allow=[]))

    got = sorted((hit.path, hit.line, hit.kind) for hit in found.hits)
    assert got == _reference(repo, base, tip)
    assert ("app.py", 4, "AWS Access Key") in got and ("long.txt", 1, "AWS Access Key") in got
    assert ("app.py", 22, "GitHub Token") in got
    assert ("ops/pgpass", 2, "PostgreSQL Password File Line") in got
    assert found.lines == 6 and found.late is None
    assert git(repo, "rev-parse", "main") == base


def test_a_line_holding_a_line_break_is_looked_at_whole() -> None:
    aws = aws_key()
    hits = Detector(allow=[]).lines("a.py", [(1, "plain"), (2, f"x = 1\nKEY = '{aws}'")])
    assert [(hit.line, hit.kind) for hit in hits] == [(2, "AWS Access Key")]
