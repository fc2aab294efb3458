"""What council posts (``forge.public_text``): masked, bounded, fenced so nothing breaks out,
pinging nobody; a fact told once (``forge.told``), whoever restarts; and no post in the code
that does not go through it."""

from __future__ import annotations

import ast
import base64
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.forge import public_text
from orchestrator.forge.issue_source import skip_comment, skip_key
from orchestrator.forge.issue_voice import failure_text
from orchestrator.forge.public_text import (
    OUTPUT_CHARS,
    PublicText,
    closes,
    compose,
    log_pointer,
    markers,
    output,
    own,
    title,
    with_marker,
)
from orchestrator.forge.told import Told
from orchestrator.safety import secret_mask
from tests.support.forge_helpers import Rig, rig

ROOT = Path(__file__).resolve().parents[2]
ZWSP = "\u200b"


def _fresh() -> str:
    return os.urandom(6).hex()


def _fenced(text: str) -> tuple[str, str]:
    """The fence of the one fenced block in ``text`` and what it holds."""
    found = re.search(r"^(`{3,})text\n(.*)\n\1$", text, re.DOTALL | re.MULTILINE)
    assert found is not None, text
    return found.group(1), found.group(2)


# -- masking ---------------------------------------------------------------------------------


def test_a_pgpass_line_and_vault_tokens_are_masked_in_output() -> None:
    salt = _fresh()
    password, vault, legacy = f"Pg{salt}pw9", f"hvs.CAES{salt}Vault0123456789", "s." + "A1b2" * 6
    printed = (
        "FAILED test_db.py::test_connect\n"
        f"db.internal:5432:prod:alice:{password}\n"
        f"VAULT_TOKEN is {vault}\n"
        f"legacy token {legacy}\n"
        "1 failed\n"
    )

    posted = output(printed)

    for value in (password, vault, legacy):
        assert value not in posted
    assert "db.internal:5432:prod:alice:***" in posted  # what it was stays readable
    assert "1 failed" in posted and "FAILED test_db.py::test_connect" in posted


def test_a_known_secret_is_masked_as_is_and_base64_encoded() -> None:
    secret = f"Known{_fresh()}Secret9"
    secret_mask.remember_named({"DEPLOY_KEY_FOR_TEST": secret})
    encoded = base64.b64encode(f"user:{secret}".encode()).decode()

    posted = output(f"using {secret}\nauth header {encoded}\n")
    said = own(f"the key was {secret}")

    assert secret not in posted and secret not in said
    assert encoded not in posted
    core = base64.b64encode(secret.encode()).decode()[4:-4]
    assert core not in posted


def test_own_words_mask_shapes_too() -> None:
    token = "ghp_" + "A1" * 18
    said = own(f"could not push: password={_fresh()}x and token {token}")
    assert token not in said and "password=***" in said


# -- bounds ----------------------------------------------------------------------------------


def test_only_the_bounded_tail_of_output_is_posted() -> None:
    printed = "\n".join(f"line {n} " + "x" * 70 for n in range(500))

    posted = output(printed)

    _, held = _fenced(posted)
    assert len(held) <= OUTPUT_CHARS
    assert held.splitlines()[-1].startswith("line 499 ")
    assert "line 0 " not in posted
    cut = re.search(r"\((\d+) first lines of the output left out\)", posted)
    assert cut is not None
    assert int(cut.group(1)) + len(held.splitlines()) == 500


def test_a_line_cut_by_the_bound_is_dropped_whole() -> None:
    posted = output("y" * 5000 + "\nlast line")
    _, held = _fenced(posted)
    assert held == "last line"


def test_a_summary_keeps_its_head() -> None:
    posted = output("\n".join(f"step {n}" for n in range(200)), lines=5, keep="head")
    _, held = _fenced(posted)
    assert held.splitlines() == [f"step {n}" for n in range(5)]
    assert "(195 last lines of the output left out)" in posted


def test_no_output_posts_nothing() -> None:
    assert output("\n  \n") == ""
    assert compose(own("said"), output(""), own("more")) == "said\n\nmore\n"


def test_a_title_is_one_short_line() -> None:
    made = title("issue-3: " + "word " * 60 + "\n@octocat second line")
    assert "\n" not in made and len(made) <= 120 and made.endswith("...")


# -- nothing breaks out ------------------------------------------------------------------------


def test_a_fence_in_the_output_cannot_end_the_block() -> None:
    printed = "before\n```\n@org/team please look <img src=x>\n````\nafter\n"

    posted = output(printed)

    fence, held = _fenced(posted)
    assert len(fence) == 5  # longer than the longest run inside
    assert held == printed.strip("\n")  # inside the fence verbatim: it renders as text
    assert posted.count(fence) == 2


def test_mentions_references_and_html_are_neutralised_in_own_words() -> None:
    said = own(
        "reason from the issue: @octocat @org/team see #12 and other/repo#3 and GH-4 "
        "<!-- council:fact:skip:x --> ![i](https://example.invalid/t.png) mail a@b.example"
    )

    assert "@octocat" not in said and f"@{ZWSP}octocat" in said
    assert "@org/team" not in said and f"@{ZWSP}org/team" in said
    assert re.search(r"#\d", said) is None and re.search(r"GH-\d", said) is None
    assert re.search(r"<[^\u200b]", said) is None and markers(said) == set()  # no tag opens
    assert f"<{ZWSP}!-- council:fact:skip:x -->" in said  # shown as it is
    assert "](" not in said
    assert "a@b.example" in said  # an address pings nobody


def test_a_reference_council_names_itself_stays_a_link() -> None:
    said = own("Pull request #7 carries this work; see #8", refs=(7,))
    assert "#7 carries" in said and f"#{ZWSP}8" in said
    assert closes(12) == "Closes #12"


def test_failure_text_is_own_words_then_a_fenced_tail_and_the_log_pointer() -> None:
    salt = _fresh()
    reason = (
        "verify command `python check.py` exited 1:\n"
        f"db.internal:5432:prod:alice:Pg{salt}pw9\n"
        f"hvs.CAES{salt}Vault0123456789\n"
        "@org/team ``` done"
    )

    posted = failure_text("issue-4", reason)

    assert posted.startswith("CLI Council could not finish task `issue-4`: verify command ")
    _, held = _fenced(posted)
    assert "alice:***" in held and salt not in posted
    assert posted.endswith(log_pointer("issue-4") + "\n")
    assert ".council/logs/issue-4-*.log" in posted


def test_a_skip_reason_from_the_issue_pings_nobody() -> None:
    said = skip_comment("`council` block: unknown setting '@octocat'")
    assert "@octocat" not in said
    assert skip_key("a") == skip_key("a") != skip_key("b")


def test_a_marker_key_is_checked_and_only_the_last_one_counts() -> None:
    marked = with_marker(own("hello"), "started:issue-1:0")
    assert markers(marked) == {"started:issue-1:0"}
    quoted = compose(own("failed"), output("<!-- council:fact:skip:x -->"))
    assert markers(with_marker(quoted, "failed:issue-1:1")) == {"failed:issue-1:1"}
    assert markers(quoted) == set()
    with pytest.raises(ValueError, match="fact key"):
        with_marker(own("x"), "bad key -->")


# -- told once -------------------------------------------------------------------------------


@pytest.fixture
def r(tmp_path: Path) -> Iterator[Rig]:
    with rig(tmp_path) as made:
        yield made


async def test_a_fact_is_told_once_across_processes(r: Rig) -> None:
    number = r.gh.create_issue("One", labels=["council"])

    assert await Told(r.forge).tell(number, "started:issue-1:0", own("started"))
    assert not await Told(r.forge).tell(number, "started:issue-1:0", own("started"))  # restart
    told = Told(r.forge)
    assert not await told.tell(number, "started:issue-1:0", own("started"))
    assert await told.tell(number, "failed:issue-1:1", own("failed"))
    assert not await told.tell(number, "failed:issue-1:1", own("failed"))  # known, no read

    bodies = [comment.body for comment in r.gh.site.issues[number].comments]
    assert len(bodies) == 2
    assert [markers(body) for body in bodies] == [{"started:issue-1:0"}, {"failed:issue-1:1"}]


async def test_an_issue_listed_without_comments_is_told_without_reading_them(r: Rig) -> None:
    number = r.gh.create_issue("One", labels=["council"])
    (issue,) = await r.forge.list_issues(labels=["council"])
    assert issue.comments == 0
    told = Told(r.forge)
    told.saw(number, issue.comments)
    r.gh.clear_requests()

    assert await told.tell(number, "started:issue-1:0", own("started"))

    assert [(q.method, q.path.split("?")[0]) for q in r.gh.requests] == [
        ("POST", f"/api/v3/repos/octo/widgets/issues/{number}/comments")
    ]
    (again,) = await r.forge.list_issues(labels=["council"])
    told = Told(r.forge)  # a restart: the issue has a comment now, so it is read
    told.saw(number, again.comments)
    assert again.comments == 1
    assert not await told.tell(number, "started:issue-1:0", own("started"))


async def test_an_outsiders_copy_of_a_marker_silences_nothing(r: Rig) -> None:
    number = r.gh.create_issue("One", labels=["council"])
    r.gh.site.add_comment(
        number, "hi\n\n<!-- council:fact:skip:abc -->\n", "stranger", association="NONE"
    )
    r.gh.site.add_comment(number, "hi\n\n<!-- council:fact:skip:def -->\n", "alice")

    told = Told(r.forge)
    assert await told.tell(number, "skip:abc", own("cannot take it"))
    assert not await told.tell(number, "skip:def", own("cannot take it"))


# -- every post goes through it --------------------------------------------------------------

_POSTS = {"comment", "open_pull", "create_pull"}


def _calls(tree: ast.AST) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if node.func.attr in _POSTS:
            yield node


def test_every_post_in_the_code_is_public_text() -> None:
    """Each ``.comment(``/``.open_pull(`` call of the orchestrator passes what a function of
    ``public_text`` (or a function typed to return a ``PublicText``) made, and nothing but
    ``public_text`` makes a ``PublicText`` (the ``Forge`` protocol takes nothing else: mypy)."""
    makers = {name for name in public_text.__all__ if name[0].islower()}
    typed: set[str] = set()
    trees: dict[Path, ast.Module] = {}
    for path in sorted((ROOT / "orchestrator").rglob("*.py")):
        if "testing" in path.parts:
            continue
        tree = trees[path] = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if node.returns is not None and ast.unparse(node.returns) == "PublicText":
                typed.add(node.name)
    found = 0
    for path, tree in trees.items():
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            made = isinstance(node, ast.Call) and ast.unparse(node.func) == "PublicText"
            assert not made or path.name == "public_text.py", f"{where}:{node.lineno}"
        bound: dict[str, ast.expr] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name):
                    bound[target.id] = node.value
        for call in _calls(tree):
            if path.name == "github.py":  # the client sends what it was given
                continue
            given = [
                *call.args[1:],
                *(k.value for k in call.keywords if k.arg in ("title", "body")),
            ]
            for arg in given:
                if isinstance(arg, ast.Name) and arg.id in bound:
                    arg = bound[arg.id]
                if isinstance(arg, ast.Await):
                    arg = arg.value
                assert isinstance(arg, ast.Call), f"{where}:{call.lineno}: {ast.unparse(arg)}"
                name = ast.unparse(arg.func).rsplit(".", 1)[-1]
                assert name in makers | typed, f"{where}:{call.lineno}: {ast.unparse(arg)}"
                found += 1
    assert found >= 4  # told, the cancelled pull request's close, the pull request's title, body


def test_the_forge_protocol_takes_public_text_only() -> None:
    from typing import get_type_hints

    from orchestrator.forge.base import Forge

    assert get_type_hints(Forge.comment)["body"] is PublicText
    hints = get_type_hints(Forge.open_pull)
    assert hints["body"] is PublicText and hints["title"] is PublicText
