"""The planner's copy of the base branch holds nothing outside its directory, on every Python
the project runs on: Python's ``data`` filter where there is one (3.11.4 on), else the same
rules by hand (Debian 12's 3.11.2): a member that lands outside, a link that points outside or
is absolute, a device or a FIFO is left out; files, directories and inside links are written,
an absolute name made relative."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from orchestrator.run import goal


def _archive() -> tarfile.TarFile:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:

        def add(
            name: str, kind: bytes = tarfile.REGTYPE, link: str = "", text: bytes = b""
        ) -> None:
            member = tarfile.TarInfo(name)
            member.type, member.linkname, member.size = kind, link, len(text)
            tar.addfile(member, io.BytesIO(text) if text else None)

        add("src", tarfile.DIRTYPE)
        add("src/a.py", text=b"a = 1\n")
        add("src/inside", tarfile.SYMTYPE, "a.py")
        add("src/outside", tarfile.SYMTYPE, "../../../etc/passwd")
        add("absolute", tarfile.SYMTYPE, "/etc/passwd")
        add("../escaped.txt", text=b"no\n")
        add("/rooted.txt", text=b"no\n")
        add("fifo", tarfile.FIFOTYPE)
    data.seek(0)
    return tarfile.open(fileobj=data)


# By hand on every Python; Python's own filter where this one has it.
_WAYS = ["by-hand", *(["data-filter"] if hasattr(tarfile, "data_filter") else [])]


@pytest.mark.parametrize("way", _WAYS)
def test_the_copy_holds_nothing_outside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    if way == "by-hand":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    into = tmp_path / "copy"
    into.mkdir()
    with _archive() as tar:
        goal._extract(tar, into)
    assert (into / "src" / "a.py").read_text() == "a = 1\n"
    assert (into / "src" / "inside").read_text() == "a = 1\n"
    left = sorted(str(p.relative_to(into)) for p in into.rglob("*"))
    assert left == ["rooted.txt", "src", "src/a.py", "src/inside"]  # "/rooted.txt" made relative
    assert not (tmp_path / "escaped.txt").exists()
