"""Hostile files are bounded: a FIFO, a device, a directory, a socket or a huge file is refused
in one line, before hubasync waits on it or reads it whole; a link to a regular file is read."""

from __future__ import annotations

import os
import socket
import sys
import textwrap
import threading
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import pytest
from processes import Child

from hubasync.errors import ExitCode, OutputError, UsageError
from hubasync.files.reading import (
    KEY_FILE_LIMIT,
    STATE_FILE_LIMIT,
    UnreadableFile,
    read_bounded,
    read_key_file,
)
from hubasync.files.state import load_state
from hubasync.service.config import CONFIG_LIMIT, load_config

T = TypeVar("T")
URL = "https://hub.example.com/shares/v2/async/abc"


def within(seconds: float, call: Callable[[], T]) -> T:
    """``call()``, failing if it has not returned after ``seconds`` (it would block forever)."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(("value", call()))
        except BaseException as error:  # handed to the test below
            outcome.append(("error", error))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still blocked after {seconds} s"
    kind, value = outcome[0]  # type: ignore[misc]
    if kind == "error":
        raise value  # type: ignore[misc]
    return value  # type: ignore[no-any-return]


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


@pytest.fixture
def unix_socket(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        yield path


def test_a_regular_file_and_a_link_to_one_are_read_whole(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_bytes(b"x" * 100)
    link = tmp_path / "link"
    link.symlink_to(target)
    assert read_bounded(str(target), 100, "the file") == b"x" * 100
    assert read_bounded(str(link), 100, "the file") == b"x" * 100
    (tmp_path / "empty").write_bytes(b"")
    assert read_bounded(str(tmp_path / "empty"), 0, "f") == b""


def test_a_fifo_is_refused_without_waiting_for_a_writer(fifo: Path) -> None:
    with pytest.raises(UnreadableFile, match=f"^cannot read the key {fifo}: it is a FIFO, not a "
                                             "regular file$"):
        within(30, lambda: read_bounded(str(fifo), 100, "the key"))


@pytest.mark.parametrize(("name", "kind"), [("/dev/zero", "a character device"),
                                            ("/dev/null", "a character device")])
def test_a_device_is_refused(name: str, kind: str) -> None:
    if not os.path.exists(name):
        pytest.skip(f"no {name} here")
    with pytest.raises(UnreadableFile, match=f"it is {kind}, not a regular file"):
        within(30, lambda: read_bounded(name, 100, "the key"))


def test_a_directory_a_socket_and_links_to_them_are_refused(tmp_path: Path,
                                                            unix_socket: Path) -> None:
    for path, kind in ((tmp_path, "a directory"), (unix_socket, "a socket")):
        link = tmp_path / f"link-{path.name}"
        link.symlink_to(path)
        for name in (path, link):
            with pytest.raises(UnreadableFile, match=f"it is {kind}, not a regular file"):
                read_bounded(str(name), 100, "the key")


def test_a_missing_file_and_a_dangling_link_are_missing(tmp_path: Path) -> None:
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    for path in (tmp_path / "nothing", dangling):
        with pytest.raises(UnreadableFile, match="No such file") as caught:
            read_bounded(str(path), 100, "the key")
        assert caught.value.missing
    with pytest.raises(UnreadableFile) as caught:
        read_bounded(str(tmp_path), 100, "the key")
    assert not caught.value.missing


def test_a_file_larger_than_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"x" * 101)
    assert read_bounded(str(path), 101, "f") == b"x" * 101
    with pytest.raises(UnreadableFile, match="it is 101 bytes, more than the 100 bytes allowed"):
        read_bounded(str(path), 100, "f")
    sparse = tmp_path / "sparse"  # a terabyte, on no disk: reading it whole would never end
    with open(sparse, "wb") as handle:
        handle.truncate(1 << 40)
    with pytest.raises(UnreadableFile, match="more than the 4 MiB allowed"):
        within(30, lambda: read_bounded(str(sparse), 4 << 20, "f"))


def test_a_file_longer_than_its_size_says_is_cut_at_the_limit() -> None:
    proc = "/proc/self/maps"  # a regular file of size 0 that holds more than 10 bytes
    if not os.path.exists(proc) or os.stat(proc).st_size != 0:
        pytest.skip("no /proc here")
    with pytest.raises(UnreadableFile, match="it holds more than the 10 bytes allowed"):
        read_bounded(proc, 10, "f")


def test_a_key_file_is_its_first_line_stripped(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text("  K3y \nsecond line\n")
    assert read_key_file(str(path)) == "K3y"
    path.write_bytes(b"\n")
    with pytest.raises(UnreadableFile, match="its first line is empty"):
        read_key_file(str(path))
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(UnreadableFile, match="not text"):
        read_key_file(str(path))
    path.write_bytes(b"k" * (KEY_FILE_LIMIT + 1))
    with pytest.raises(UnreadableFile, match="more than the 64 KiB allowed"):
        read_key_file(str(path))
    path.write_bytes(b"k" * KEY_FILE_LIMIT)
    assert read_key_file(str(path)) == "k" * KEY_FILE_LIMIT


@pytest.mark.parametrize("hostile", ["fifo", "/dev/zero", "directory", "big"])
def test_the_cli_refuses_a_hostile_key_file_in_one_line(tmp_path: Path, fifo: Path,
                                                        hostile: str) -> None:
    path = {"fifo": str(fifo), "directory": str(tmp_path), "/dev/zero": "/dev/zero",
            "big": str(tmp_path / "big")}[hostile]
    (tmp_path / "big").write_bytes(b"k" * (KEY_FILE_LIMIT + 1))
    with Child([sys.executable, "-m", "hubasync", "--apikey-file", path, URL]) as child:
        assert child.wait() == ExitCode.USAGE
        lines = child.stderr_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"hubasync: cannot read the API key file {path}: it "), lines


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hubasync.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_the_config_refuses_a_hostile_key_file_naming_the_key(tmp_path: Path,
                                                              fifo: Path) -> None:
    for hostile in (str(fifo), "/dev/zero", str(tmp_path)):
        path = _config(tmp_path, f"[shares.a]\nurl = '{URL}'\napikey_file = '{hostile}'\n")
        with pytest.raises(UsageError, match=f"^{path}: shares.a.apikey_file: cannot read the "
                                             f"key file {hostile}: it is "):
            within(30, lambda path=path: load_config(str(path)))  # type: ignore[misc]


def test_a_hostile_or_huge_config_is_refused_in_one_line(tmp_path: Path, fifo: Path) -> None:
    with pytest.raises(UsageError, match=f"^{fifo}: cannot read the config: it is a FIFO"):
        within(30, lambda: load_config(str(fifo)))
    big = _config(tmp_path, f"[shares.a]\nurl = '{URL}'\n# {'x' * CONFIG_LIMIT}\n")
    with pytest.raises(UsageError, match="cannot read the config: it is .* bytes, more than the "
                                         "1 MiB allowed"):
        load_config(str(big))


@pytest.mark.parametrize("nested", ["a = " + "[" * 50_000, "a = " + "{b = " * 50_000,
                                    "a = " + "[" * 5000 + "]" * 5000])
def test_a_deeply_nested_config_is_a_usage_error_not_a_recursion_error(tmp_path: Path,
                                                                       nested: str) -> None:
    path = _config(tmp_path, nested)
    with pytest.raises(UsageError, match=f"^{path}: not valid TOML: nested too deeply$"):
        load_config(str(path))


def test_sync_on_a_deeply_nested_config_exits_2_in_one_line(tmp_path: Path) -> None:
    path = _config(tmp_path, "a = " + "[" * 50_000)
    with Child([sys.executable, "-m", "hubasync", "sync", str(path)]) as child:
        assert child.wait() == ExitCode.USAGE
        lines = child.stderr_text().splitlines()
    assert lines == [f"hubasync: {path}: not valid TOML: nested too deeply"]


def test_a_hostile_or_huge_state_file_is_refused(tmp_path: Path, fifo: Path) -> None:
    with pytest.raises(OutputError, match=f"^cannot read state file {fifo}: it is a FIFO"):
        within(30, lambda: load_state(str(fifo)))
    big = tmp_path / "big.state"
    big.write_bytes(b" " * (STATE_FILE_LIMIT + 1))
    with pytest.raises(OutputError, match="more than the 4 MiB allowed"):
        load_state(str(big))
    assert load_state(str(tmp_path / "none.state")) is None
