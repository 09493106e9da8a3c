"""The resumable run over an in-memory hub: claims made before any request, stdout and files,
and a service's file moved or cut while it is written, a crash included."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator, List

import pytest

from hubasync.core.params import Query
from hubasync.core.urls import parse_share_url
from hubasync.errors import ClaimError
from hubasync.run.driving import drive
from hubasync.run.pipeline import Committed
from hubasync.run.resumable import ResumableRun
from hubasync.run.settings import RunSettings
from hubasync.transport.session import HubSession

from .memory_hub import URL, MemoryHub


def settings(tmp_path: Path, **fields: Any) -> RunSettings:
    values: dict[str, Any] = {"format": "jsonl", "output": str(tmp_path / "s.jsonl"),
                              "state": str(tmp_path / "s.state"), "query": Query(sort="_id"),
                              "follow": True, "in_place": True}
    values.update(fields)
    return RunSettings(share=parse_share_url(URL), apikey="key", **values)


def opened(chosen: RunSettings) -> ResumableRun:
    run = ResumableRun(chosen)
    run.claim()
    assert run.open()
    return run


def commits(run: ResumableRun, hub: MemoryHub) -> Iterator[None]:
    """One step of the run at a time, up to each commit."""
    session = HubSession(hub.transport(), clock=hub.clock)
    for step in run.pages(session, attempts=session.attempts):
        if isinstance(step, Committed):
            yield None


def numbers(path: Path) -> List[int]:
    return [json.loads(line)["n"] for line in path.read_text().splitlines()] if path.exists() \
        else []


def test_a_file_moved_between_pages_is_completed_and_a_new_one_started(tmp_path: Path) -> None:
    hub = MemoryHub(events=30, page_max=10)
    run = opened(settings(tmp_path))
    pages = commits(run, hub)
    next(pages)
    (tmp_path / "s.jsonl").rename(tmp_path / "s.jsonl.1")
    for _ in pages:
        pass
    run.suspend()
    run.release()
    assert numbers(tmp_path / "s.jsonl.1") == list(range(10))
    assert numbers(tmp_path / "s.jsonl") == list(range(10, 30))
    state = json.loads((tmp_path / "s.state").read_text())
    info = os.stat(tmp_path / "s.jsonl")
    assert state["output_identity"] == [info.st_dev, info.st_ino]


def test_a_json_file_moved_between_pages_stays_a_valid_document(tmp_path: Path) -> None:
    hub = MemoryHub(events=30, page_max=10)
    run = opened(settings(tmp_path, format="json", output=str(tmp_path / "s.json")))
    pages = commits(run, hub)
    next(pages)
    (tmp_path / "s.json").rename(tmp_path / "s.json.1")
    for _ in pages:
        pass
    run.suspend()
    run.release()
    old = json.loads((tmp_path / "s.json.1").read_text())
    new = json.loads((tmp_path / "s.json").read_text())
    assert [e["n"] for e in old] == list(range(10)) and [e["n"] for e in new] == list(range(10, 30))


def test_a_file_cut_under_the_run_starts_anew_without_a_hole(tmp_path: Path) -> None:
    hub = MemoryHub(events=30, page_max=10)
    run = opened(settings(tmp_path))
    pages = commits(run, hub)
    next(pages)
    os.truncate(tmp_path / "s.jsonl", 0)  # logrotate's copytruncate
    for _ in pages:
        pass
    run.suspend()
    run.release()
    assert numbers(tmp_path / "s.jsonl") == list(range(10, 30))  # no run of NUL bytes before


def test_killed_while_its_file_was_moved_the_old_file_is_found_and_completed(
        tmp_path: Path) -> None:
    hub = MemoryHub(events=30, page_max=10)
    run = opened(settings(tmp_path, format="json", output=str(tmp_path / "s.json")))
    session = HubSession(hub.transport(), clock=hub.clock)
    steps = run.pages(session, attempts=session.attempts)
    for step in steps:  # the first page committed, the second written but not committed
        if isinstance(step, Committed):
            break
    with run.page() as page:
        page.write(next(b for b in [_batch(b'{"n":99}')]))
        # kill -9 here: the page is in the file, past the committed offset, never rolled back
        (tmp_path / "s.json").rename(tmp_path / "s.json.1")
        os.close(_fd_of(run))
        run._writer = None  # what a killed process leaves: nothing closed
        page.committed = True  # nor rolled back
    run.release()  # the kernel drops a killed process's locks
    again = ResumableRun(settings(tmp_path, format="json", output=str(tmp_path / "s.json")))
    again.claim()
    assert again.open()
    drive(again.pages(HubSession(hub.transport(), clock=hub.clock),
                      attempts=session.attempts), hub.clock)
    again.suspend()
    again.release()
    old = json.loads((tmp_path / "s.json.1").read_text())  # completed: the torn page cut off
    new = json.loads((tmp_path / "s.json").read_text())
    assert [e["n"] for e in old] == list(range(10))
    assert [e["n"] for e in new] == list(range(10, 30))


@pytest.mark.parametrize("events", [0, 10])
def test_a_file_moved_just_before_it_is_reopened_is_not_created_anew_empty(
        tmp_path: Path, events: int) -> None:
    hub = MemoryHub(events=events, page_max=10)
    chosen = settings(tmp_path, format="json", output=str(tmp_path / "s.json"))
    run = opened(chosen)
    for _ in commits(run, hub):
        pass
    run.suspend()
    run.next_pass()
    hub.events += [{"n": n} for n in range(events, events + 5)]
    run._moved_while_suspended = lambda: False  # type: ignore[method-assign]
    (tmp_path / "s.json").rename(tmp_path / "s.json.1")  # just after that look
    for _ in commits(run, hub):
        pass
    run.suspend()
    run.release()
    old = json.loads((tmp_path / "s.json.1").read_text())
    new = json.loads((tmp_path / "s.json").read_text())
    assert [e["n"] for e in old + new] == list(range(events + 5))


def test_a_file_moved_between_claim_and_open_is_completed_where_it_went(tmp_path: Path) -> None:
    hub = MemoryHub(events=10, page_max=10)
    chosen = settings(tmp_path, format="json", output=str(tmp_path / "s.json"))
    run = opened(chosen)
    for _ in commits(run, hub):
        pass
    run.suspend()
    run.release()
    again = ResumableRun(chosen)
    again.claim()
    (tmp_path / "s.json").rename(tmp_path / "s.json.1")  # a service claims all, opens later
    assert again.open()
    again.suspend()
    again.release()
    assert [e["n"] for e in json.loads((tmp_path / "s.json.1").read_text())] == list(range(10))
    assert json.loads((tmp_path / "s.json").read_text()) == []


def _batch(event: bytes) -> Any:
    from hubasync.events.splitter import Batch

    return Batch.of([event])


def _fd_of(run: ResumableRun) -> int:
    assert run._writer is not None
    return run._writer.output._fd  # type: ignore[attr-defined, no-any-return]


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_killed_in_the_first_page_after_a_suspension_the_run_goes_on(tmp_path: Path,
                                                                      fmt: str) -> None:
    hub = MemoryHub(events=10, page_max=10)
    chosen = settings(tmp_path, format=fmt, output=str(tmp_path / f"s.{fmt}"))
    run = opened(chosen)
    for _ in commits(run, hub):
        pass
    run.suspend()  # the state says: closed cleanly, at this size
    run.next_pass()
    path = tmp_path / f"s.{fmt}"
    size = path.stat().st_size
    with run.page() as page:  # an event larger than the write buffer: it reaches the file
        page.write(_batch(b'{"n":99,"pad":"' + b"x" * (2 << 20) + b'"}'))
        os.close(_fd_of(run))  # kill -9: the torn page stays in the file
        run._writer = None
        page.committed = True
    run.release()
    assert path.stat().st_size > size
    hub.events += [{"n": n} for n in range(10, 15)]
    again = opened(chosen)
    for _ in commits(again, hub):
        pass
    again.suspend()
    again.release()
    got = numbers(path) if fmt == "jsonl" else [e["n"] for e in json.loads(path.read_text())]
    assert got == list(range(15))


@pytest.mark.parametrize("new, expected", [(0, 2), (15, 4)])
def test_a_pass_saves_the_state_once_a_page_and_once_more_to_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new: int, expected: int) -> None:
    import hubasync.run.resumable as resumable

    hub = MemoryHub(events=10, page_max=10)
    run = opened(settings(tmp_path))
    for _ in commits(run, hub):
        pass
    run.suspend()
    saves: List[str] = []
    real = resumable.save_state
    monkeypatch.setattr(resumable, "save_state", lambda *a: saves.append("save") or real(*a))
    run.next_pass()
    hub.events += [{"n": n} for n in range(10, 10 + new)]
    pages = sum(1 for _ in commits(run, hub))  # caught up: one empty page; else two pages
    run.suspend()
    run.release()
    # each page's cursor; before the first write, the file no longer closed cleanly; at the
    # end, the file closed cleanly
    assert len(saves) == expected == pages + (1 if new else 0) + 1


def test_killed_as_its_new_file_is_opened_then_that_file_moved_every_file_is_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Killed(Exception):
        pass

    def killed() -> None:
        raise Killed

    hub = MemoryHub(events=10, page_max=10)
    chosen = settings(tmp_path, format="json", output=str(tmp_path / "s.json"))
    run = opened(chosen)
    for _ in commits(run, hub):
        pass
    run.suspend()
    run.next_pass()
    (tmp_path / "s.json").rename(tmp_path / "s.json.1")
    hub.events += [{"n": n} for n in range(10, 15)]
    monkeypatch.setattr(run, "save", killed)
    with pytest.raises(Killed):  # the new file opened (its "[]" cut), not yet saved
        for _ in commits(run, hub):
            pass
    os.close(_fd_of(run))
    run._writer = None
    run._locks.close()  # the kernel drops a killed process's locks
    (tmp_path / "s.json").rename(tmp_path / "s.json.2")  # logrotate again
    again = opened(chosen)
    for _ in commits(again, hub):
        pass
    again.suspend()
    again.release()
    got = []
    for name in ("s.json.1", "s.json.2", "s.json"):
        got += [e["n"] for e in json.loads((tmp_path / name).read_text())]
    assert got == list(range(15))


def test_a_new_file_moved_before_it_is_opened_is_not_created_again_empty(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = settings(tmp_path, format="json", output=str(tmp_path / "s.json"))
    notices: List[str] = []
    run = ResumableRun(chosen, notice=notices.append)
    run.claim()
    create = run._create_in_place

    def create_then_move(output: str) -> Any:
        made = create(output)
        monkeypatch.undo()
        os.rename(output, output + ".1")  # logrotate, just then
        assert not os.path.exists(output)
        return made

    monkeypatch.setattr(run, "_create_in_place", create_then_move)
    assert run.open()  # the new file, moved away, is let go whole; another one is started
    assert any("was moved to" in notice and "s.json.1" in notice for notice in notices)
    hub = MemoryHub(events=10, page_max=10)
    for _ in commits(run, hub):
        pass
    run.suspend()
    run.release()
    assert json.loads((tmp_path / "s.json.1").read_text()) == []
    assert [e["n"] for e in json.loads((tmp_path / "s.json").read_text())] == list(range(10))


def _delivering(run: ResumableRun) -> Any:
    """A fake destination for ``run``'s JSON-lines record, from where the record ends."""
    from hubasync.run.delivering import Deliveries

    from .memory_hub import FakeClock
    from .test_delivering import FakeDestination

    destination = FakeDestination()
    run.deliveries = Deliveries([("fake", destination, str(run.settings.output) + ".dead")],
                                key_prefix="k", record=run.record_end, save=run.save,
                                retries=3, clock=FakeClock(), patient=True)
    run.deliveries.restore({}, run.record_end())
    return destination


def _delivered(run: ResumableRun, destination: Any) -> List[tuple[int, str]]:
    deliveries = run.deliveries
    assert deliveries is not None
    for wait in deliveries.catch_up():
        if wait.until is not None:  # a backoff: the fake clock moves on
            deliveries.clock.sleep(wait.until - deliveries.clock.now())  # type: ignore[attr-defined]
    return [(json.loads(e.event)["n"], e.key) for e in destination.received]


def test_a_rotation_made_again_after_its_new_file_failed_moves_no_position_twice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hubasync.errors import OutputError

    hub = MemoryHub(events=10, page_max=10)
    run = opened(settings(tmp_path))
    destination = _delivering(run)
    for _ in commits(run, hub):
        pass
    _delivered(run, destination)
    run.suspend()
    run.next_pass()
    (tmp_path / "s.jsonl").rename(tmp_path / "s.jsonl.1")
    hub.events += [{"n": n} for n in range(10, 15)]
    create = run._create_in_place

    def refused_once(output: str) -> Any:
        monkeypatch.undo()
        raise OutputError(f"cannot write {output}: Permission denied")

    monkeypatch.setattr(run, "_create_in_place", refused_once)
    with pytest.raises(OutputError):
        for _ in commits(run, hub):
            pass
    run.save()  # a flush while no file is open
    assert run._create_in_place == create
    for _ in commits(run, hub):  # the next turn rotates again, and starts the new file
        pass
    assert _delivered(run, destination) == [(n, f"k-{n}") for n in range(15)]
    assert run.deliveries is not None and "rotated_from" not in run.deliveries.saved()
    run.suspend()
    run.release()


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
@pytest.mark.parametrize("when", ["suspended", "stopped"])
def test_a_file_cut_in_place_between_turns_is_started_anew(tmp_path: Path, fmt: str,
                                                           when: str) -> None:
    hub = MemoryHub(events=10, page_max=10)
    chosen = settings(tmp_path, format=fmt, output=str(tmp_path / f"s.{fmt}"))
    notices: List[str] = []
    run = ResumableRun(chosen, notice=notices.append)
    run.claim()
    assert run.open()
    for _ in commits(run, hub):
        pass
    run.suspend()
    run.next_pass()
    path = tmp_path / f"s.{fmt}"
    (tmp_path / f"s.{fmt}.1").write_bytes(path.read_bytes())  # copytruncate: a copy, then cut
    os.truncate(path, 0)
    if when == "stopped":
        run.release()
        run = ResumableRun(chosen, notice=notices.append)
        run.claim()
        assert run.open()
    hub.events += [{"n": n} for n in range(10, 15)]
    for _ in commits(run, hub):
        pass
    run.suspend()
    run.release()
    assert any("cut in place" in notice for notice in notices)
    got = numbers(path) if fmt == "jsonl" else [e["n"] for e in json.loads(path.read_text())]
    assert got == list(range(10, 15))


def test_a_cut_file_loses_for_a_destination_only_what_it_had_not_delivered(
        tmp_path: Path) -> None:
    hub = MemoryHub(events=10, page_max=10)
    notices: List[str] = []
    run = ResumableRun(settings(tmp_path), notice=notices.append)
    run.claim()
    assert run.open()
    destination = _delivering(run)
    destination.plan = [4]  # four events acknowledged, then the receiver goes away
    for _ in commits(run, hub):
        pass
    assert run.deliveries is not None
    for _ in run.deliveries.catch_up(wait=False):
        pass
    run.suspend()
    run.next_pass()
    os.truncate(tmp_path / "s.jsonl", 0)
    hub.events += [{"n": n} for n in range(10, 15)]
    for _ in commits(run, hub):
        pass
    assert _delivered(run, destination) == [(n, f"k-{n}") for n in (0, 1, 2, 3, *range(10, 15))]
    assert any("fake: 6 events not yet delivered were cut away" in n for n in notices), notices
    run.suspend()
    run.release()


def test_a_new_file_the_share_did_not_write_is_refused(tmp_path: Path) -> None:
    hub = MemoryHub(events=10, page_max=10)
    run = opened(settings(tmp_path))
    for _ in commits(run, hub):
        pass
    run.suspend()
    run.release()
    (tmp_path / "s.jsonl").rename(tmp_path / "s.jsonl.1")
    (tmp_path / "s.jsonl").write_text('{"someone":"else"}\n')
    with pytest.raises(ClaimError, match="did not write"):
        ResumableRun(settings(tmp_path)).claim()
    assert (tmp_path / "s.jsonl").read_text() == '{"someone":"else"}\n'


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_an_output_no_state_describes_is_refused(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"out.{fmt}"
    path.write_text("precious\n")
    chosen = settings(tmp_path, format=fmt, output=str(path), in_place=False, follow=False)
    with pytest.raises(ClaimError, match="no state describes it"):
        ResumableRun(chosen).claim()
    assert path.read_text() == "precious\n"


def test_append_and_overwrite_are_what_the_user_asks(tmp_path: Path) -> None:
    hub = MemoryHub(events=5, page_max=10)
    path = tmp_path / "out.jsonl"
    path.write_text('{"n":-1}\n')
    for existing, expected in (("append", [-1, 0, 1, 2, 3, 4]), ("overwrite", [0, 1, 2, 3, 4])):
        for leftover in ("s.state",):
            (tmp_path / leftover).unlink(missing_ok=True)
        path.write_text('{"n":-1}\n')
        chosen = settings(tmp_path, output=str(path), in_place=False, follow=False,
                          existing=existing)
        run = opened(chosen)
        drive(run.pages(HubSession(hub.transport(), clock=hub.clock),
                        attempts=lambda: HubSession(hub.transport()).attempts()), hub.clock)
        run.finish()
        run.release()
        assert numbers(path) == expected, existing


def test_nothing_reaches_stdout_when_no_page_was_committed(tmp_path: Path) -> None:
    import io

    stdout = io.BytesIO()
    chosen = settings(tmp_path, format="json", output=None, state=None, in_place=False,
                      follow=False)
    run = ResumableRun(chosen, stdout=stdout)
    run.claim()
    assert run.open()
    run.stop_early()
    assert stdout.getvalue() == b""
