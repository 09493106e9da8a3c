"""Files respected: one writer per state and output (exit 75), outputs that are devices, FIFOs or
links written through, no temporary file opened through a planted link, and an output changed
behind a state's back refused (exit 7)."""

from __future__ import annotations

import json
import os
import signal
import stat
import threading
from pathlib import Path
from typing import Any, Callable

import pytest
from processes import wait_until

from .helpers import HeldJobs, read_jsonl, run, saved_state, share, start

DEADLINE = 60.0


def stop_after_the_first_page(sim: Any, args: list[str], state: Path, signum: int) -> HeldJobs:
    """Run ``args`` until its state records the first page while the second page's job is held
    pending, then send ``signum`` (the run is surely still running: it waits on that job).
    Returns the held jobs: ``release()`` them before a run that must finish."""
    held = HeldJobs(sim, let_through=1)
    with start(args) as child:
        wait_until(lambda: saved_state(state).get("pages", 0) >= 1 and held.held >= 1,
                   "the first page's state, and the next job posted", child=child)
        code = child.stop(signum)
        expected = 130 if signum == signal.SIGTERM else -signum
        assert code == expected, child.stderr_text()
    assert json.loads(state.read_text())["pages"] == 1
    return held


def holds_pid(lock: Path, pid: int) -> Callable[[], bool]:
    return lambda: lock.exists() and lock.read_text() == f"{pid}\n"


def snapshot(directory: Path) -> dict[str, tuple[int, int, int]]:
    return {entry.name: (entry.lstat().st_ino, entry.lstat().st_size, entry.lstat().st_mtime_ns)
            for entry in directory.iterdir()}


# -- one writer ---------------------------------------------------------------------------------


def test_second_run_on_one_state_exits_75_at_once_naming_the_first(
        make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(events=1200, page_max=500, job_latency=600)
    out, state = tmp_path / "out.jsonl", tmp_path / "out.state"
    args = [share(sim), "--sort=_id", "--format=jsonl", "-o", str(out), "--state", str(state)]
    with start(args) as first:
        wait_until(holds_pid(tmp_path / "out.state.lock", first.pid), "the first run's lock",
                   child=first)
        wait_until(lambda: sim.stats.requests["post"] >= 1, "the first run's query",
                   child=first)
        before_files, before_posts = snapshot(tmp_path), sim.stats.requests["post"]
        # a run that waited for the lock would wait as long as the first run's job (600 s):
        # run()'s own timeout would end the test
        second = run(args, timeout=DEADLINE)
        assert second.code == 75, second.stderr
        assert second.stderr == (f"hubasync: state file {state} is in use by hubasync pid "
                                 f"{first.pid}; try again later\n")
        assert snapshot(tmp_path) == before_files, "the second run wrote something"
        assert sim.stats.requests["post"] == before_posts, "the second run asked the hub"

        other_state = run([*args[:-1], str(tmp_path / "other.state")], timeout=DEADLINE)
        assert other_state.code == 75, other_state.stderr
        assert f"output {out} is in use by hubasync pid {first.pid}" in other_state.stderr
        assert not (tmp_path / "other.state").exists()
        first.kill()
    assert first.returncode == -signal.SIGKILL
    # the kernel dropped the lock with the process: the next run goes ahead and finishes
    sim.hub.jobs.latency = 0.0
    done = run(args, timeout=DEADLINE * 2)
    assert done.code == 0, done.stderr
    assert read_jsonl(str(out)) == sim.share_events("demo")


def test_runs_started_together_get_one_writer(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(events=600, page_max=300, job_latency=600)
    out, state = tmp_path / "out.json", tmp_path / "out.state"
    args = [share(sim), "--sort=_id", "-o", str(out), "--state", str(state)]
    runs = [start(args) for _ in range(3)]
    try:
        wait_until(lambda: sum(child.poll() is not None for child in runs) == 2,
                   "two of the three runs to give up")
        winner, = [child for child in runs if child.poll() is None]
        wait_until(holds_pid(tmp_path / "out.state.lock", winner.pid), "the winner's lock",
                   child=winner)
        wait_until(lambda: sim.stats.requests["post"] >= 1, "the winner's query", child=winner)
        for child in runs:
            if child is not winner:
                assert child.returncode == 75, child.stderr_text()
                assert child.stderr_text() == (f"hubasync: state file {state} is in use by "
                                               f"hubasync pid {winner.pid}; try again later\n")
    finally:
        for child in runs:
            child.close()
    assert sim.stats.requests["post"] == 1  # only the winner asked the hub


# -- outputs that are not regular files -----------------------------------------------------------


def null_device(directory: Path) -> Path:
    """A character device like /dev/null, made in ``directory``: a regression that replaces its
    output must not replace the machine's own /dev/null (these tests may run as root)."""
    node = directory / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs CAP_MKNOD; the link test covers devices")
    return node


@pytest.mark.parametrize("kind", ["device", "link to /dev/null"])
def test_device_as_output_is_written_through_and_stays_a_device(
        sim: Any, tmp_path: Path, kind: str) -> None:
    if kind == "device":
        target = null_device(tmp_path)
    else:
        target = tmp_path / "null"
        os.symlink("/dev/null", target)
    done = run([share(sim), "-o", str(target)])
    assert done.code == 0, done.stderr
    assert stat.S_ISCHR(os.stat(target).st_mode)
    assert os.path.islink(target) == (kind != "device")
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["null"]
    assert sim.stats.requests["results"] >= 3  # every page went through it


def test_fifo_as_output_is_written_through(sim: Any, tmp_path: Path) -> None:
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def reader() -> None:
        with open(fifo, "rb") as handle:
            received.append(handle.read())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    done = run([share(sim), "--sort=_id", "--format=jsonl", "-o", str(fifo)], timeout=DEADLINE)
    thread.join(timeout=DEADLINE)
    assert done.code == 0, done.stderr
    assert [json.loads(line) for line in received[0].splitlines()] == sim.share_events("demo")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["events.fifo"]


def test_state_with_a_device_or_fifo_output_is_refused_up_front(
        sim: Any, tmp_path: Path) -> None:
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    device = tmp_path / "null"
    os.symlink("/dev/null", device)
    for target in (str(device), str(fifo)):
        done = run([share(sim), "-o", target, "--state", str(tmp_path / "s.state")])
        assert done.code == 2, done.stderr
        assert done.stderr == (f"hubasync: --state needs -o to name a regular file: {target} "
                               "is a device, FIFO or socket, which holds nothing a later run "
                               "could continue\n")
    assert sim.stats.requests["post"] == 0
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["events.fifo", "null"]


def test_symlinked_output_stays_a_link_and_its_target_gets_the_events(
        make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(events=2500, page_max=1000)
    real = tmp_path / "data" / "events.jsonl"
    real.parent.mkdir()
    link, state = tmp_path / "events.jsonl", tmp_path / "events.state"
    os.symlink(os.path.join("data", "events.jsonl"), link)
    args = [share(sim), "--sort=_id", "--format=jsonl", "-o", str(link), "--state", str(state),
            "--limit=1500"]
    first = run(args)
    assert first.code == 0, first.stderr
    assert os.path.islink(link) and os.readlink(link) == os.path.join("data", "events.jsonl")
    assert read_jsonl(str(real)) == sim.share_events("demo")[:1500]
    again = run(args)  # continues the file after the limit, through the link
    assert again.code == 0, again.stderr
    assert os.path.islink(link)
    assert read_jsonl(str(real)) == sim.share_events("demo")
    # the target's folder holds the events, and nothing else once the run is over (its lock was
    # beside the target while it ran)
    assert sorted(entry.name for entry in real.parent.iterdir()) == ["events.jsonl"]

    json_link, json_real = tmp_path / "events.json", tmp_path / "data" / "events.json"
    os.symlink(json_real, json_link)
    done = run([share(sim), "--sort=_id", "-o", str(json_link)])
    assert done.code == 0, done.stderr
    assert os.path.islink(json_link) and json.loads(json_real.read_bytes()) == (
        sim.share_events("demo"))


# -- planted links --------------------------------------------------------------------------------


def test_links_planted_at_temporary_names_are_not_followed(sim: Any, tmp_path: Path) -> None:
    victims = tmp_path / "victims"
    victims.mkdir()
    part_victim, state_victim = victims / "passwd", victims / "shadow"
    part_victim.write_text("root:x:0:0\n")
    state_victim.write_text("root:*:1:0\n")
    out, state = tmp_path / "out.json", tmp_path / "out.state"
    os.symlink(part_victim, str(out) + ".part")
    os.symlink(state_victim, str(state) + ".tmp")
    done = run([share(sim), "--sort=_id", "-o", str(out), "--state", str(state)])
    assert done.code == 0, done.stderr
    assert part_victim.read_text() == "root:x:0:0\n"
    assert state_victim.read_text() == "root:*:1:0\n"
    assert json.loads(out.read_bytes()) == sim.share_events("demo")
    assert json.loads(state.read_text())["complete"] is True
    assert not os.path.lexists(str(out) + ".part")


def test_link_planted_at_a_part_being_resumed_is_refused(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(events=3000, page_max=300)
    out, state = tmp_path / "out.json", tmp_path / "out.state"
    args = [share(sim), "--sort=_id", "-o", str(out), "--state", str(state)]
    stop_after_the_first_page(sim, args, state, signal.SIGTERM)
    part = Path(str(out) + ".part")
    victim = tmp_path / "victim"
    victim.write_bytes(part.read_bytes() + b"precious")
    part.unlink()
    os.symlink(victim, part)
    done = run(args)
    assert done.code == 7, done.stderr
    assert "it is a symbolic link" in done.stderr
    assert victim.read_bytes().endswith(b"precious")


# -- an output changed behind the state's back ----------------------------------------------------


def test_lines_appended_after_a_complete_run_are_refused_not_cut(
        make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(events=800, page_max=300)
    out, state = tmp_path / "out.jsonl", tmp_path / "out.state"
    args = [share(sim), "--sort=_id", "--format=jsonl", "-o", str(out), "--state", str(state)]
    assert run(args).code == 0
    with open(out, "a", encoding="utf-8") as handle:
        handle.write('{"added": "by someone else"}\n')
    before = out.read_bytes()
    done = run(args)
    assert done.code == 7, done.stderr
    assert done.stderr.count("\n") == 1 and "was changed since" in done.stderr
    assert f"move {out} away and remove the state file to start over" in done.stderr
    assert out.read_bytes() == before
    assert sim.stats.requests["post"] == 3  # the refused run asked nothing


def test_lines_appended_after_a_clean_stop_are_refused(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(events=3000, page_max=300)
    out, state = tmp_path / "out.jsonl", tmp_path / "out.state"
    args = [share(sim), "--sort=_id", "--format=jsonl", "-o", str(out), "--state", str(state)]
    stop_after_the_first_page(sim, args, state, signal.SIGTERM)
    recorded = json.loads(state.read_text())
    assert recorded["output_end"] == out.stat().st_size == recorded["output_offset"]
    with open(out, "a", encoding="utf-8") as handle:
        handle.write('{"added": "by someone else"}\n')
    before = out.read_bytes()
    done = run(args)
    assert done.code == 7, done.stderr
    assert "was changed since" in done.stderr
    assert out.read_bytes() == before


def test_another_file_at_the_output_path_is_refused(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(events=800, page_max=300)
    out, state = tmp_path / "out.jsonl", tmp_path / "out.state"
    args = [share(sim), "--sort=_id", "--format=jsonl", "-o", str(out), "--state", str(state)]
    assert run(args).code == 0
    size = out.stat().st_size
    other = (b'{"another": "file"}\n' * (size // 20 + 2))[:size]
    out.write_bytes(other)  # the size the state records, other bytes
    done = run(args)
    assert done.code == 7, done.stderr
    assert "its content is not what the state describes" in done.stderr
    assert out.read_bytes() == other, "the other file was not touched"
    out.write_bytes(other[: size // 2])  # shorter
    shorter = run(args)
    assert shorter.code == 7, shorter.stderr
    assert f"holds {size // 2} bytes, but the state says {size} were committed" in shorter.stderr
    assert out.read_bytes() == other[: size // 2]


def test_a_torn_page_left_by_kill_9_is_still_cut(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(events=3000, page_max=300)
    out, state = tmp_path / "out.jsonl", tmp_path / "out.state"
    args = [share(sim), "--sort=_id", "--format=jsonl", "-o", str(out), "--state", str(state)]
    held = stop_after_the_first_page(sim, args, state, signal.SIGKILL)
    offset = json.loads(state.read_text())["output_offset"]
    with open(out, "ab") as handle:
        handle.write(b'{"torn": "pa')  # what a kill in the middle of a page leaves
    assert out.stat().st_size > offset
    held.release()
    done = run(args)
    assert done.code == 0, done.stderr
    assert read_jsonl(str(out)) == sim.share_events("demo")


def test_a_run_leaves_no_lock_file_behind(make_sim: Any, tmp_path: Path) -> None:
    from .helpers import run as run_cli

    sim = make_sim(events=300)
    out, state = tmp_path / "events.jsonl", tmp_path / "events.state"
    done = run_cli([share(sim), "--format=jsonl", "-o", str(out), "--state", str(state)])
    assert done.code == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl", "events.state"]
