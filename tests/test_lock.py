"""One writer per file: hubasync.lock on real files and real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from processes import wait_until

import hubasync.files.lock as lock_module
from hubasync.errors import Busy, ExitCode, OutputError
from hubasync.files.lock import lock_file, lock_path

SRC = str(Path(__file__).resolve().parents[1] / "src")

HOLDER = """
import sys, time
sys.path.insert(0, {src!r})
from hubasync.files.lock import lock_file
held = lock_file({path!r}, what="state file")
print("locked", flush=True)
time.sleep(120)
"""


def test_lock_records_the_pid_and_release_lets_another_take_it(tmp_path: Path) -> None:
    path = str(tmp_path / "out.state")
    lock = lock_file(path, what="state file")
    assert lock.held
    assert Path(lock_path(path)).read_text() == f"{os.getpid()}\n"
    lock.release()
    assert not lock.held
    assert not Path(lock_path(path)).exists(), "nothing is left behind"
    lock.release()  # twice does nothing
    with lock_file(path) as again:
        assert again.held
    assert not again.held


def test_second_lock_is_busy_naming_the_holder(tmp_path: Path) -> None:
    path = str(tmp_path / "out.state")
    with lock_file(path, what="state file"), pytest.raises(Busy) as caught:
        lock_file(path, what="state file")
    message = str(caught.value)
    assert message == f"state file {path} is in use by hubasync pid {os.getpid()}; try again later"
    assert caught.value.exit_code == ExitCode.BUSY == 75
    lock_file(path).release()  # free again once the holder let go


def test_lock_is_dropped_when_the_holder_is_killed(tmp_path: Path) -> None:
    path = str(tmp_path / "out.state")
    child = subprocess.Popen([sys.executable, "-c", HOLDER.format(src=SRC, path=path)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "locked\n"
        with pytest.raises(Busy, match=f"in use by hubasync pid {child.pid};"):
            lock_file(path)
        child.kill()
        child.wait(timeout=30)
        with lock_file(path) as lock:
            assert lock.held
    finally:
        child.kill()
        child.wait()


def test_holder_without_a_pid_yet_is_named_vaguely(tmp_path: Path) -> None:
    path = str(tmp_path / "out.state")
    with lock_file(path):
        Path(lock_path(path)).write_text("")
        with pytest.raises(Busy, match="in use by another hubasync process; try again later"):
            lock_file(path)


def test_a_link_planted_at_the_lock_file_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    path = str(tmp_path / "out.state")
    os.symlink(victim, lock_path(path))
    with pytest.raises(OutputError, match="symbolic link"):
        lock_file(path, what="state file")
    assert victim.read_text() == "precious\n"


def test_a_fifo_at_the_lock_file_is_refused_without_hanging(tmp_path: Path) -> None:
    path = str(tmp_path / "out.state")
    os.mkfifo(lock_path(path))
    with pytest.raises(OutputError, match="not a regular file"):
        lock_file(path)


def test_lock_in_a_missing_directory_is_an_output_error(tmp_path: Path) -> None:
    path = str(tmp_path / "missing" / "out.state")
    with pytest.raises(OutputError, match=r"cannot lock output .*No such file or directory"):
        lock_file(path, what="output")


def test_without_fcntl_locking_does_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock_module, "fcntl", None)
    path = str(tmp_path / "out.state")
    first, second = lock_file(path), lock_file(path)
    assert not first.held and not second.held
    assert list(tmp_path.iterdir()) == []
    first.release()


def test_two_processes_racing_for_one_lock_get_one_winner(tmp_path: Path) -> None:
    path = str(tmp_path / "out.state")
    script = f"""
import sys, time
sys.path.insert(0, {SRC!r})
from hubasync.errors import Busy
from hubasync.files.lock import lock_file
while time.time() < float(sys.argv[1]):
    pass
try:
    held = lock_file({path!r})
except Busy:
    sys.exit(75)
print("won", flush=True)
sys.stdin.read()
"""
    start = str(time.time() + 1.0)
    children = [subprocess.Popen([sys.executable, "-c", script, start], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True) for _ in range(4)]
    try:
        wait_until(lambda: sum(child.poll() is not None for child in children) == 3,
                   "the three losers to give up")
        running = [child for child in children if child.poll() is None]
        assert len(running) == 1 and running[0].stdout is not None
        assert running[0].stdout.readline() == "won\n"
    finally:
        outcomes = []
        for child in children:
            assert child.stdin is not None
            child.stdin.close()
            outcomes.append(child.wait(timeout=60))
    assert sorted(outcomes) == [0, 75, 75, 75]


def test_a_directory_is_left_for_the_writer_to_refuse(tmp_path: Path) -> None:
    lock = lock_file(str(tmp_path), what="output")
    assert not lock.held
    assert not Path(lock_path(str(tmp_path))).exists()


def test_locks_taken_and_let_go_in_a_race_are_never_held_twice(tmp_path: Path) -> None:
    import threading

    path = str(tmp_path / "out.state")
    holding: list[int] = []
    most = [0]
    errors: list[BaseException] = []
    guard = threading.Lock()

    def contend() -> None:
        from hubasync.errors import Busy

        for _ in range(300):
            try:
                lock = lock_file(path)
            except Busy:
                continue
            except BaseException as error:  # anything else fails the test
                errors.append(error)
                return
            with guard:
                holding.append(1)
                most[0] = max(most[0], len(holding))
            with guard:
                holding.pop()
            lock.release()

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and most[0] == 1
    assert not Path(lock_path(path)).exists()


def test_a_lock_file_a_killed_run_left_is_taken_over(tmp_path: Path) -> None:
    path = str(tmp_path / "out.state")
    Path(lock_path(path)).write_text("999999\n")  # kill -9 leaves it: nobody holds it
    with lock_file(path) as lock:
        assert lock.held and Path(lock_path(path)).read_text() == f"{os.getpid()}\n"
    assert not Path(lock_path(path)).exists()


def test_a_lock_file_removed_while_it_is_being_locked_is_locked_anew(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hubasync.files.lock as module
    from hubasync.errors import Busy

    path = str(tmp_path / "out.state")
    holder = lock_file(path)
    real_flock = module.fcntl.flock
    calls = [0]

    def flock_after_the_holder_let_go(fd: int, operation: int) -> None:
        calls[0] += 1
        if calls[0] == 1:
            holder.release()  # its file removed between our open() and our flock()
        real_flock(fd, operation)

    monkeypatch.setattr(module.fcntl, "flock", flock_after_the_holder_let_go)
    contender = lock_file(path)
    monkeypatch.setattr(module.fcntl, "flock", real_flock)
    assert contender.held and calls[0] == 2  # it locked the file now at the name
    with pytest.raises(Busy):
        lock_file(path)  # so a third one finds it held: never two holders of one name
    contender.release()
