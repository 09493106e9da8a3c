"""A page's buffered parts reach the file with ``os.writev``, whole, whatever it writes at once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, List, Sequence

import pytest

from hubasync.errors import OutputError
from hubasync.files import output as output_module
from hubasync.files.output import open_output


def parts(count: int, size: int) -> List[bytes]:
    return [bytes([65 + i % 26]) * size for i in range(count)]


@pytest.mark.parametrize("most", [999, 65537, 1 << 30])
def test_partial_writev_calls_are_continued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            most: int) -> None:
    calls: List[int] = []
    real = os.writev

    def short_writev(fd: int, buffers: Sequence[Any]) -> int:
        calls.append(len(buffers))
        assert len(buffers) <= output_module._IOV_MAX
        data = b"".join(bytes(b) for b in buffers)[:most]
        return real(fd, [data])

    monkeypatch.setattr(os, "writev", short_writev)
    out = open_output(str(tmp_path / "o"))
    page = parts(3000, 400)  # more parts than one writev takes, more bytes than a chunk
    for part in page:
        out.write(part)
    assert out.commit() == 3000 * 400
    out.close(complete=True)
    assert (tmp_path / "o").read_bytes() == b"".join(page)
    assert calls and max(calls) == output_module._IOV_MAX


def test_a_failed_writev_loses_the_page_and_says_why(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(fd: int, buffers: Sequence[Any]) -> int:
        raise OSError(28, "No space left on device")

    out = open_output(str(tmp_path / "o"))
    out.write(b"ok")
    out.commit()
    monkeypatch.setattr(os, "writev", no_space)
    with pytest.raises(OutputError, match="No space left on device"):
        for part in parts(4, 1 << 19):
            out.write(part)
    with pytest.raises(OutputError, match="part of the page was lost"):
        out.commit()
    out.rollback()
    monkeypatch.undo()
    out.write(b" again")
    out.close(complete=True)
    assert (tmp_path / "o").read_bytes() == b"ok again"


def test_without_writev_the_parts_are_joined(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "writev")
    out = open_output(str(tmp_path / "o"))
    page = parts(5, 300_000)
    for part in page:
        out.write(part)
    out.close(complete=True)
    assert (tmp_path / "o").read_bytes() == b"".join(page)
