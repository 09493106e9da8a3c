"""Page transactions of hubasync.output on real files, pipes and devices."""

from __future__ import annotations

import io
import os
import select
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import pytest

from hubasync.errors import OutputError
from hubasync.files.output import Output, open_output

SRC = str(Path(__file__).resolve().parents[1] / "src")
BIG = 3 << 20  # larger than the write buffer, so an uncommitted page reaches the file


def page(tag: str, size: int = 100) -> bytes:
    unit = f"<{tag}>".encode()
    return (unit * (size // len(unit) + 1))[:size]


# -- atomic files -------------------------------------------------------------------------------


def test_atomic_file_appears_only_when_complete(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    out = open_output(str(path))
    part = tmp_path / "out.json.part"
    assert part.exists() and not path.exists()
    out.write(b"one")
    assert out.commit() == 3
    out.write(b"two")
    assert out.commit() == 6
    assert not path.exists()
    out.close(complete=True)
    assert path.read_bytes() == b"onetwo"
    assert not part.exists()
    assert out.offset == 6


def test_atomic_rollback_truncates_a_page_already_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    part = tmp_path / "out.json.part"
    out = open_output(str(path))
    out.write(b"kept")
    out.commit()
    out.write(page("x", BIG))
    assert part.stat().st_size > 4, "a big page is written through"
    out.rollback()
    assert part.read_bytes() == b"kept"
    out.write(b"+next")
    out.commit()
    out.close(complete=True)
    assert path.read_bytes() == b"kept+next"


def test_abort_leaves_part_with_committed_pages_then_trailer(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    out = open_output(str(path))
    out.write(b"[1")
    out.commit()
    out.write(page("y", BIG))
    out.close(complete=False, trailer=b"]")
    assert not path.exists()
    assert (tmp_path / "out.json.part").read_bytes() == b"[1]"
    assert out.offset == 2


def test_abort_with_nothing_committed_removes_the_part(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    out = open_output(str(path))
    out.write(b"uncommitted")
    out.close(complete=False, trailer=b"[]")
    assert list(tmp_path.iterdir()) == []


def test_close_is_idempotent_and_write_after_close_fails(tmp_path: Path) -> None:
    out = open_output(str(tmp_path / "o"))
    out.write(b"a")
    out.close(complete=True)
    out.close(complete=True)
    out.close(complete=False)
    with pytest.raises(OutputError):
        out.write(b"b")
    assert (tmp_path / "o").read_bytes() == b"a"


def test_fresh_atomic_run_discards_a_stale_part(tmp_path: Path) -> None:
    (tmp_path / "o.part").write_bytes(b"stale")
    out = open_output(str(tmp_path / "o"), durable=True)
    out.write(b"new")
    out.commit()
    out.close(complete=True)
    assert (tmp_path / "o").read_bytes() == b"new"


def test_complete_close_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "o"
    path.write_bytes(b"old content")
    out = open_output(str(path))
    assert path.read_bytes() == b"old content"
    out.write(b"new")
    out.close(complete=True)
    assert path.read_bytes() == b"new"


# -- resume -------------------------------------------------------------------------------------


def test_resume_cuts_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "o"
    (tmp_path / "o.part").write_bytes(b"committed" + b"TORN PAGE")
    out = open_output(str(path), resume_offset=9)
    assert out.offset == 9 and out.continued
    assert (tmp_path / "o.part").read_bytes() == b"committed"
    out.write(b"+more")
    out.commit()
    out.close(complete=True)
    assert path.read_bytes() == b"committed+more"


def test_resume_of_a_file_shorter_than_the_state_says_fails(tmp_path: Path) -> None:
    (tmp_path / "o.part").write_bytes(b"short")
    with pytest.raises(OutputError, match=r"holds 5 bytes.*100"):
        open_output(str(tmp_path / "o"), resume_offset=100)


def test_resume_without_the_part_fails_unless_nothing_was_committed(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="missing"):
        open_output(str(tmp_path / "o"), resume_offset=10)
    out = open_output(str(tmp_path / "o"), resume_offset=0)
    out.write(b"x")
    out.close(complete=True)
    assert (tmp_path / "o").read_bytes() == b"x"


def test_resume_in_append_mode_works_on_path_itself(tmp_path: Path) -> None:
    path = tmp_path / "o.jsonl"
    path.write_bytes(b"line1\nline2\npartial li")
    out = open_output(str(path), append=True, resume_offset=12)
    out.write(b"line3\n")
    out.commit()
    out.close(complete=True)
    assert path.read_bytes() == b"line1\nline2\nline3\n"


# -- append and in-place files ------------------------------------------------------------------


def test_append_keeps_existing_content_and_rolls_back_to_it(tmp_path: Path) -> None:
    path = tmp_path / "o.jsonl"
    path.write_bytes(b"before\n")
    out = open_output(str(path), append=True)
    assert out.offset == 7 and not out.continued
    out.write(b"a\n")
    out.commit()
    out.write(page("z", BIG))
    out.rollback()
    assert path.read_bytes() == b"before\na\n"
    out.write(b"uncommitted")
    out.close(complete=False)
    assert path.read_bytes() == b"before\na\n"
    assert not (tmp_path / "o.jsonl.part").exists()


def test_in_place_file_without_atomic(tmp_path: Path) -> None:
    path = tmp_path / "o"
    path.write_bytes(b"old stuff")
    out = open_output(str(path), atomic=False)
    assert path.read_bytes() == b""
    out.write(b"p1")
    out.commit()
    out.write(page("q", BIG))
    out.close(complete=False, trailer=b"!")
    assert path.read_bytes() == b"p1!"


# -- checks up front ----------------------------------------------------------------------------


def test_missing_directory_fails_up_front(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "o.json"
    with pytest.raises(OutputError, match=rf"cannot write {path}: No such file or directory"):
        open_output(str(path))
    with pytest.raises(OutputError, match="No such file"):
        open_output(str(path), append=True)


def test_directory_as_path_fails_up_front(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=rf"cannot write {tmp_path}: Is a directory"):
        open_output(str(tmp_path))
    with pytest.raises(OutputError, match="Is a directory"):
        open_output(str(tmp_path), append=True)
    assert list(tmp_path.iterdir()) == []


def _as_unprivileged(action: Callable[[], object]) -> str:
    """Run ``action`` in a child that dropped root; return the message of its OutputError."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            os.close(read_end)
            os.setgid(65534)
            os.setuid(65534)
            action()
            os.write(write_end, b"no error")
        except OutputError as exc:
            os.write(write_end, str(exc).encode())
        except BaseException as exc:
            os.write(write_end, repr(exc).encode())
            code = 1
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        message = reader.read().decode()
    os.waitpid(pid, 0)
    return message


def _without_permission(tmp_path: Path, action: Callable[[], object]) -> str:
    tmp_path.chmod(0o555)
    try:
        if os.geteuid() == 0:
            return _as_unprivileged(action)
        with pytest.raises(OutputError) as caught:
            action()
        return str(caught.value)
    finally:
        tmp_path.chmod(0o755)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_unwritable_directory_fails_up_front(tmp_path: Path) -> None:
    path = tmp_path / "o.json"
    message = _without_permission(tmp_path, lambda: open_output(str(path)))
    assert message == f"cannot write {path}: Permission denied"
    message = _without_permission(tmp_path, lambda: open_output(str(path), append=True))
    assert message == f"cannot write {path}: Permission denied"


def test_read_only_existing_file_fails_up_front(tmp_path: Path) -> None:
    path = tmp_path / "o.jsonl"
    path.write_bytes(b"x")
    path.chmod(0o444)
    if os.geteuid() == 0:
        message = _as_unprivileged(lambda: open_output(str(path)))
    else:
        with pytest.raises(OutputError) as caught:
            open_output(str(path))
        message = str(caught.value)
    assert message == f"cannot write {path}: Permission denied"


# -- errors while writing -----------------------------------------------------------------------


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


def test_full_disk_is_an_output_error_and_committed_pages_survive(tiny_tmpfs: Path) -> None:
    path = tiny_tmpfs / "o.jsonl"
    out = open_output(str(path), atomic=False)
    out.write(b"page one\n")
    out.commit()
    with pytest.raises(OutputError, match=rf"cannot write {path}.*No space left on device"):
        for _ in range(200):
            out.write(page("f", 64 << 10))
        out.commit()
    out.rollback()
    out.close(complete=False)
    assert path.read_bytes() == b"page one\n"


def test_enospc_on_commit_becomes_output_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = open_output(str(tmp_path / "o"), durable=True)
    out.write(b"ok")
    out.commit()

    def no_space(fd: int, data: Any) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", no_space)
    out.write(b"more")
    with pytest.raises(OutputError, match="No space left on device"):
        out.commit()
    monkeypatch.undo()
    assert out.offset == 2
    out.close(complete=False)
    assert (tmp_path / "o.part").read_bytes() == b"ok"


def test_file_size_limit_is_an_output_error(tmp_path: Path) -> None:
    script = f"""
import resource, signal, sys
sys.path.insert(0, {SRC!r})
from hubasync.errors import OutputError
from hubasync.files.output import open_output
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (5000, 5000))
out = open_output({str(tmp_path / "o")!r}, atomic=False)
out.write(b"a" * 1000)
out.commit()
try:
    out.write(b"b" * (2 << 20))
    out.commit()
except OutputError as exc:
    print(exc)
    out.close(complete=False, trailer=b"END")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert "File too large" in done.stdout
    assert (tmp_path / "o").read_bytes() == b"a" * 1000 + b"END"


def test_dev_full_as_stdout_is_an_output_error() -> None:
    with open("/dev/full", "wb") as full:
        out = open_output(None, stdout=full)
        out.write(b"event")
        with pytest.raises(OutputError, match=r"<stdout>: No space left on device"):
            out.commit()
        out.close(complete=False, trailer=b"]")


# -- stdout as a regular file -------------------------------------------------------------------


def test_stdout_regular_file_writes_through_and_truncates_on_rollback(tmp_path: Path) -> None:
    path = tmp_path / "redirected"
    with open(path, "wb") as stream:
        out = open_output(None, stdout=stream)
        out.write(b"page1")
        out.commit()
        out.write(page("r", BIG))
        assert path.stat().st_size > 5
        out.rollback()
        assert path.read_bytes() == b"page1"
        out.write(b"page2")
        out.commit()
        out.write(page("s", BIG))
        out.close(complete=False, trailer=b"]")
        assert path.read_bytes() == b"page1page2]"
        assert not (tmp_path / "redirected.part").exists()


def test_stdout_appending_regular_file_starts_at_its_end(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"earlier\n")
    with open(path, "ab") as stream:
        out = open_output(None, stdout=stream)
        assert out.offset == 8
        out.write(b"new\n")
        out.commit()
        out.write(page("t", BIG))
        out.rollback()
        out.write(b"again\n")
        out.close(complete=True)
    assert path.read_bytes() == b"earlier\nnew\nagain\n"


def test_stdout_regular_file_resume(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"0123456789torn")
    with open(path, "ab") as stream:
        out = open_output(None, stdout=stream, resume_offset=10)
        assert out.continued
        out.write(b"X")
        out.close(complete=True)
    assert path.read_bytes() == b"0123456789X"
    with open(path, "wb") as stream, pytest.raises(OutputError, match="holds 0 bytes"):
        open_output(None, stdout=stream, resume_offset=10)


# -- stdout as a pipe or another stream ---------------------------------------------------------


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0.05)[0])


def test_pipe_sees_nothing_of_an_uncommitted_page() -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "wb") as stream:
        out = open_output(None, stdout=stream, resume_offset=123)
        assert out.offset == 0 and not out.continued
        out.write(b"first ")
        out.write(b"page")
        assert not _readable(read_end)
        assert out.commit() == 10
        assert os.read(read_end, 100) == b"first page"
        out.write(b"rolled back")
        out.rollback()
        out.write(b"dropped")
        assert not _readable(read_end)
        out.close(complete=False, trailer=b"!")
    with os.fdopen(read_end, "rb") as reader:
        assert reader.read() == b"!"


def test_pipe_receives_a_big_page_only_at_commit() -> None:
    read_end, write_end = os.pipe()
    received: list[bytes] = []
    reader = threading.Thread(
        target=lambda: received.append(os.fdopen(read_end, "rb").read()), daemon=True
    )
    reader.start()
    big = page("big", 20 << 20)  # beyond the in-memory spool: goes through a temporary file
    with os.fdopen(write_end, "wb") as stream:
        out = open_output(None, stdout=stream)
        for start in range(0, len(big), 1 << 20):
            out.write(big[start : start + (1 << 20)])
        out.commit()
        out.write(b"x" * 100)
        out.close(complete=True)
    reader.join(10)
    assert received == [big + b"x" * 100]


def test_stream_without_file_descriptor_is_spooled() -> None:
    stream = io.BytesIO()
    out = open_output(None, stdout=stream)
    out.write(b"abc")
    assert stream.getvalue() == b""
    out.commit()
    out.write(b"def")
    out.rollback()
    out.close(complete=False, trailer=b"]")
    assert stream.getvalue() == b"abc]"


def test_killed_writer_leaves_only_committed_pages_in_the_pipe() -> None:
    script = f"""
import os, signal, sys
sys.path.insert(0, {SRC!r})
from hubasync.files.output import open_output
out = open_output(None)
for number in range(3):
    out.write(b"page%d;" % number)
    out.commit()
out.write(b"U" * (12 << 20))
os.kill(os.getpid(), signal.SIGKILL)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, check=False)
    assert done.returncode == -signal.SIGKILL
    assert done.stdout == b"page0;page1;page2;"


def test_broken_pipe_is_an_output_error_and_nothing_more_is_written() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    stream: BinaryIO = os.fdopen(write_end, "wb")
    try:
        out = open_output(None, stdout=stream)
        out.write(b"event")
        with pytest.raises(OutputError, match=r"cannot write <stdout>: Broken pipe"):
            out.commit()
        out.close(complete=False, trailer=b"]")  # the reader is gone: the trailer is not tried
    finally:
        stream.close()


def test_head_closing_the_pipe_early_ends_quietly() -> None:
    script = f"""
import sys
sys.path.insert(0, {SRC!r})
from hubasync.errors import OutputError
from hubasync.files.output import open_output
out = open_output(None)
try:
    for number in range(100000):
        out.write(b"line %d\\n" % number)
        out.commit()
except OutputError as exc:
    print(exc, file=sys.stderr)
    out.close(complete=False, trailer=b"]")
    sys.exit(7)
"""
    head = subprocess.Popen(["head", "-n", "2"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert head.stdin is not None and head.stdout is not None
    writer = subprocess.run(
        [sys.executable, "-c", script], stdout=head.stdin, stderr=subprocess.PIPE, check=False
    )
    head.stdin.close()
    assert head.stdout.read() == b"line 0\nline 1\n"
    head.wait()
    assert writer.returncode == 7
    assert writer.stderr.decode().strip() == "cannot write <stdout>: Broken pipe"


def test_output_is_an_abstract_interface() -> None:
    plain = Output()
    with pytest.raises(NotImplementedError):
        plain.write(b"")


class _CutShort(io.BytesIO):
    """A stream interrupted (Ctrl-C) after taking the first chunk of a page."""

    def write(self, data: Any) -> int:
        if self.getvalue():
            raise KeyboardInterrupt
        return super().write(bytes(data[:3]))


def test_stream_cut_inside_a_page_gets_nothing_more() -> None:
    stream = _CutShort()
    out = open_output(None, stdout=stream)
    out.write(b"[\n{}")
    with pytest.raises(KeyboardInterrupt):
        out.commit()
        out.commit()
    with pytest.raises(OutputError, match="ends inside a page"):
        out.commit()
    out.close(complete=False, trailer=b"\n]\n")
    assert stream.getvalue() == b"[\n{"


@pytest.mark.parametrize("durable", [False, True])
def test_durable_commits_are_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durable: bool
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    out = open_output(str(tmp_path / "o"), durable=durable)
    for _ in range(3):
        out.write(b"page")
        out.commit()
    assert len(synced) == (3 if durable else 0)
    out.close(complete=True)
    assert len(synced) >= (4 if durable else 1), "the file is synced before its rename"


@pytest.mark.parametrize("where", ["file", "stream"])
def test_a_page_that_failed_to_write_cannot_be_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    stream = io.BytesIO()
    out = open_output(str(tmp_path / "o")) if where == "file" else open_output(None, stdout=stream)
    out.write(b"good")
    out.commit()

    def no_space(*args: Any) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", no_space)
    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "write", no_space)
    with pytest.raises(OutputError, match="No space left"):
        out.write(page("n", BIG))
        out.commit()
    monkeypatch.undo()
    with pytest.raises(OutputError, match="part of the page was lost"):
        out.commit()
    out.rollback()
    out.write(b"+after")
    assert out.commit() == 10
    out.close(complete=True)
    written = (tmp_path / "o").read_bytes() if where == "file" else stream.getvalue()
    assert written == b"good+after"


# -- what -o names: devices, FIFOs and links are written through; temporary files are not links --


def test_device_is_written_through_and_stays_a_device(tmp_path: Path) -> None:
    node = tmp_path / "null"  # not /dev/null itself: a regression would replace it (as root)
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs CAP_MKNOD; the next test covers devices")
    out = open_output(str(node))
    out.write(b"page one")
    out.commit()
    out.close(complete=True)
    assert out.offset == 8
    assert stat.S_ISCHR(os.stat(node).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]


def test_link_to_a_device_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    link = tmp_path / "sink"
    os.symlink("/dev/null", link)
    out = open_output(str(link))
    out.write(b"page")
    out.commit()
    out.close(complete=True)
    assert os.readlink(link) == "/dev/null"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sink"]


def read_fifo(path: Path, into: list[bytes]) -> threading.Thread:
    def reader() -> None:
        with open(path, "rb") as handle:
            into.append(handle.read())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    return thread


def test_fifo_is_written_through_page_by_page(tmp_path: Path) -> None:
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    thread = read_fifo(fifo, received)
    out = open_output(str(fifo))
    out.write(b"one")
    out.commit()
    out.write(b"torn")
    out.rollback()
    out.write(b"two")
    out.close(complete=True)
    thread.join(timeout=30)
    assert received == [b"onetwo"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.fifo"]


def test_link_to_a_regular_file_stays_a_link_and_its_target_gets_the_content(
        tmp_path: Path) -> None:
    target = tmp_path / "data" / "real.json"
    target.parent.mkdir()
    target.write_bytes(b"old content")
    link = tmp_path / "out.json"
    os.symlink(target, link)
    out = open_output(str(link))
    assert out.name == str(target) + ".part", "the temporary file is beside the target"
    out.write(b"new")
    out.close(complete=True)
    assert os.path.islink(link) and os.readlink(link) == str(target)
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["real.json"]


def test_dangling_link_gets_its_target_created(tmp_path: Path) -> None:
    link = tmp_path / "out.jsonl"
    os.symlink("made.jsonl", link)
    out = open_output(str(link), append=True)
    out.write(b"{}\n")
    out.close(complete=True)
    assert os.path.islink(link) and (tmp_path / "made.jsonl").read_bytes() == b"{}\n"


def test_link_planted_at_the_part_file_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    path = tmp_path / "out.json"
    os.symlink(victim, str(path) + ".part")
    out = open_output(str(path))
    out.write(b"[1]")
    out.close(complete=True)
    assert victim.read_bytes() == b"precious"
    assert path.read_bytes() == b"[1]" and not os.path.islink(path)


def test_link_planted_at_a_part_file_being_resumed_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious content")
    path = tmp_path / "out.json"
    os.symlink(victim, str(path) + ".part")
    with pytest.raises(OutputError, match="symbolic link"):
        open_output(str(path), resume_offset=3)
    assert victim.read_bytes() == b"precious content"


def test_hard_link_planted_at_a_part_file_being_resumed_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious content")
    path = tmp_path / "out.json"
    os.link(victim, str(path) + ".part")
    with pytest.raises(OutputError, match="other hard links"):
        open_output(str(path), resume_offset=3)
    assert victim.read_bytes() == b"precious content"


# -- recognising the file an earlier run left -----------------------------------------------------


def stopped_output(path: Path, pages: list[bytes], *, trailer: bytes = b"",
                   append: bool = False) -> Output:
    out = open_output(str(path), append=append, durable=True)
    for data in pages:
        out.write(data)
        out.commit()
    out.write(b"uncommitted")
    out.close(complete=False, trailer=trailer)
    return out


def test_committed_tail_is_the_digest_of_the_last_64_kib(tmp_path: Path) -> None:
    import hashlib

    from hubasync.files.output import TAIL_BYTES

    path = tmp_path / "out.jsonl"
    body = page("a", 100_000)
    out = stopped_output(path, [body, b"last"], append=True)
    written = path.read_bytes()
    assert written == body + b"last"
    assert out.end == len(written) and out.offset == len(written)
    expected = hashlib.sha256(written[-TAIL_BYTES:]).hexdigest()
    assert out.committed_tail() == expected


def test_resume_after_a_clean_stop_continues(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    first = stopped_output(path, [b"[1", b",2"], trailer=b"]")
    assert first.end == first.offset + 1
    out = open_output(str(path), resume_offset=first.offset, resume_tail=first.committed_tail(),
                      resume_end=first.end)
    out.write(b",3]")
    out.close(complete=True)
    assert path.read_bytes() == b"[1,2,3]"


def test_a_file_cut_back_by_a_killed_resume_is_resumed(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    first = stopped_output(path, [b"[1", b",2"], trailer=b"]")
    open_output(str(path), resume_offset=first.offset, resume_tail=first.committed_tail(),
                resume_end=first.end)  # cuts the "]", then the process is killed
    part = tmp_path / "out.json.part"
    assert part.read_bytes() == b"[1,2"
    out = open_output(str(path), resume_offset=first.offset, resume_tail=first.committed_tail(),
                      resume_end=first.end)
    out.write(b",3]")
    out.close(complete=True)
    assert path.read_bytes() == b"[1,2,3]"


def test_a_resumed_file_is_the_one_of_its_identity_and_none_is_created(tmp_path: Path) -> None:
    from hubasync.files.output import OutputMoved

    path = tmp_path / "out.json"
    first = stopped_output(path, [b"[1"], trailer=b"]")
    part = tmp_path / "out.json.part"
    info = part.stat()
    part.rename(tmp_path / "moved")
    for offset in (0, first.offset):
        with pytest.raises(OutputMoved):
            open_output(str(path), resume_offset=offset, resume_identity=(info.st_dev, info.st_ino))
        assert not part.exists()  # nothing created in its place
    part.write_bytes(b"[1]")  # another file, of the same content
    with pytest.raises(OutputMoved):
        open_output(str(path), resume_offset=first.offset, resume_end=first.end,
                    resume_identity=(info.st_dev, info.st_ino))
    assert part.read_bytes() == b"[1]"  # not cut


def test_lines_appended_after_a_clean_stop_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    first = stopped_output(path, [b"{}\n"], append=True)
    with open(path, "ab") as handle:
        handle.write(b'{"someone": "else"}\n')
    with pytest.raises(OutputError, match=r"stopped cleanly at 3: it was changed since .*move"):
        open_output(str(path), append=True, resume_offset=first.offset,
                     resume_tail=first.committed_tail(), resume_end=first.end)
    assert path.read_bytes() == b'{}\n{"someone": "else"}\n'


def test_torn_tail_is_still_cut_when_the_run_did_not_stop_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    out = open_output(str(path), append=True, durable=True)
    out.write(b"{}\n")
    out.commit()
    tail = out.committed_tail()
    out.write(page("torn", BIG))  # reaches the file; then the process "dies"
    assert path.stat().st_size > 3
    resumed = open_output(str(path), append=True, resume_offset=3, resume_tail=tail,
                          resume_end=None)
    resumed.close(complete=True)
    assert path.read_bytes() == b"{}\n"


@pytest.mark.parametrize("end", [None, 6])
def test_another_file_at_the_path_is_refused(tmp_path: Path, end: int | None) -> None:
    path = tmp_path / "out.jsonl"
    out = stopped_output(path, [b"{}\n", b"{}\n"], append=True)
    path.write_bytes(b"[9]\n[8]\n")  # same size or larger, other bytes
    if end is not None:
        path.write_bytes(b"[9]\n[]")
    with pytest.raises(OutputError, match="not what the state describes.*move .* away"):
        open_output(str(path), append=True, resume_offset=out.offset,
                     resume_tail=out.committed_tail(), resume_end=end)
    assert path.read_bytes().startswith(b"[9]\n[")  # nothing was cut


def test_a_state_without_a_tail_skips_the_content_check(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(b"[9]\n[8]\n")
    out = open_output(str(path), append=True, resume_offset=4, resume_tail=None)
    out.close(complete=True)
    assert path.read_bytes() == b"[9]\n"
