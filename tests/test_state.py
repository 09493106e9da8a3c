"""Resume state of hubasync.state: round trip, clear errors, atomic replacement."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import pytest
from processes import Child, wait_until

from hubasync.errors import OutputError, UsageError
from hubasync.files.state import (
    STATE_VERSION,
    RunState,
    check_state_path,
    fingerprint,
    load_state,
    save_state,
)

SRC = str(Path(__file__).resolve().parents[1] / "src")


def full_state() -> RunState:
    return RunState(
        fingerprint=fingerprint("https://hub.example/shares/v2/async/abc", [("filter", "x")]),
        token="tok-2",
        output_offset=12345,
        events=200000,
        pages=2,
        complete=False,
        last_inserted_token="last-1",
        writer={"format": "csv", "events": 200000, "columns": ["feed", "ip"], "extra": "extra"},
    )


def test_round_trip(tmp_path: Path) -> None:
    path = str(tmp_path / "state.json")
    state = full_state()
    save_state(path, state)
    assert state.updated.endswith("+00:00")
    loaded = load_state(path)
    assert loaded == state
    document = json.loads(Path(path).read_text())
    assert document["version"] == STATE_VERSION
    assert not Path(path + ".tmp").exists()


def test_defaults_round_trip(tmp_path: Path) -> None:
    path = str(tmp_path / "state.json")
    save_state(path, RunState(fingerprint="f"))
    loaded = load_state(path)
    assert loaded is not None
    assert loaded == RunState(fingerprint="f", updated=loaded.updated)
    assert loaded.token is None and loaded.writer == {} and not loaded.complete


def test_absent_state_is_none(tmp_path: Path) -> None:
    assert load_state(str(tmp_path / "none.json")) is None


def test_save_replaces_the_previous_state(tmp_path: Path) -> None:
    path = str(tmp_path / "state.json")
    save_state(path, RunState(fingerprint="f", token="one"))
    save_state(path, RunState(fingerprint="f", token="two", pages=2))
    loaded = load_state(path)
    assert loaded is not None and loaded.token == "two" and loaded.pages == 2


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"{not json", "not JSON"),
        (b"", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"version": 99}', "version 99"),
        (b'{"fingerprint": "f"}', "version None"),
    ],
)
def test_corrupt_state_is_a_clear_usage_error(tmp_path: Path, content: bytes, detail: str) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(UsageError) as caught:
        load_state(str(path))
    message = str(caught.value)
    assert str(path) in message and detail in message and "remove it" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("output_offset", "12"),
        ("output_offset", -1),
        ("events", True),
        ("complete", 1),
        ("token", 5),
        ("sink", []),
        ("fingerprint", None),
    ],
)
def test_state_with_a_bad_field_is_refused(tmp_path: Path, field: str, value: object) -> None:
    path = tmp_path / "state.json"
    save_state(str(path), full_state())
    document = json.loads(path.read_text())
    document[field] = value
    path.write_text(json.dumps(document))
    with pytest.raises(UsageError, match=repr(field)):
        load_state(str(path))


@pytest.mark.parametrize("rotated, good", [
    ({"identity": [1, 2], "end": 30}, True),
    ({"identity": None, "end": 30}, False),
    ({"identity": [1, 2]}, False),
    ({"identity": [1, 2], "end": -1}, False),
    ([1, 2], False),
])
def test_the_rotation_a_state_remembers_is_checked(tmp_path: Path, rotated: object,
                                                   good: bool) -> None:
    path = tmp_path / "state.json"
    deliveries = {"positions": {}, "segments": [], "rotated_from": rotated}
    save_state(str(path), dataclasses.replace(full_state(), deliveries=deliveries))
    if good:
        loaded = load_state(str(path))
        assert loaded is not None and loaded.deliveries["rotated_from"] == rotated
    else:
        with pytest.raises(UsageError, match="rotated_from"):
            load_state(str(path))


def test_state_with_a_missing_field_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save_state(str(path), full_state())
    document = json.loads(path.read_text())
    del document["token"]
    path.write_text(json.dumps(document))
    with pytest.raises(UsageError, match="'token' is missing"):
        load_state(str(path))


def test_unreadable_state_is_an_output_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="cannot read state file"):
        load_state(str(tmp_path))


def test_leftover_tmp_does_not_matter(tmp_path: Path) -> None:
    path = str(tmp_path / "state.json")
    save_state(path, RunState(fingerprint="f", token="good"))
    Path(path + ".tmp").write_bytes(b"half a state {")
    loaded = load_state(path)
    assert loaded is not None and loaded.token == "good"
    save_state(path, RunState(fingerprint="f", token="better"))
    loaded = load_state(path)
    assert loaded is not None and loaded.token == "better"
    check_state_path(path)  # at the start of a run, under its lock: leftovers are removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_leftovers_of_a_killed_save_are_removed_but_nothing_else(tmp_path: Path) -> None:
    path = str(tmp_path / "state.json")
    save_state(path, RunState(fingerprint="f", token="good"))
    (tmp_path / ".state.json.k3j_x9ab.tmp").write_text("{half")
    (tmp_path / ".other.json.k3j_x9ab.tmp").write_text("not ours")
    (tmp_path / ".state.json.2.k3j_x9ab.tmp").write_text("another state's, maybe in use")
    (tmp_path / "state.json.lock").write_text("")
    check_state_path(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".other.json.k3j_x9ab.tmp", ".state.json.2.k3j_x9ab.tmp", "state.json", "state.json.lock"]


def test_failed_save_keeps_the_old_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "state.json")
    save_state(path, RunState(fingerprint="f", token="old"))

    def failing_replace(source: str, target: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OutputError, match=r"cannot write state file .*No space left on device"):
        save_state(path, RunState(fingerprint="f", token="new"))
    monkeypatch.undo()
    loaded = load_state(path)
    assert loaded is not None and loaded.token == "old"
    # the failed save's temporary file (".state.json.XXXXXXXX.tmp") is gone: only the state
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_kill_during_saves_leaves_a_whole_state(tmp_path: Path) -> None:
    path = str(tmp_path / "state.json")
    script = f"""
import sys
sys.path.insert(0, {SRC!r})
from hubasync.files.state import RunState, save_state
number = 0
while True:
    number += 1
    save_state({path!r}, RunState(fingerprint="f", token="t" * (number % 5000), pages=number))
"""

    def saved_pages() -> int:
        state = load_state(path) if os.path.exists(path) else None
        return state.pages if state is not None else 0

    with Child([sys.executable, "-c", script]) as child:
        # many saves, one after another; then a kill, most likely in the middle of one
        wait_until(lambda: saved_pages() >= 200, "200 states saved", child=child)
        child.kill()
    loaded = load_state(path)
    assert loaded is not None and loaded.pages >= 200
    assert loaded.token == "t" * (loaded.pages % 5000)


def test_check_state_path(tmp_path: Path) -> None:
    check_state_path(str(tmp_path / "state.json"))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OutputError, match="No such file or directory"):
        check_state_path(str(tmp_path / "missing" / "state.json"))
    with pytest.raises(OutputError, match="Is a directory"):
        check_state_path(str(tmp_path))
    (tmp_path / "state.json").write_text("{}")
    check_state_path(str(tmp_path / "state.json"))


def test_fingerprint_is_stable_and_discriminating() -> None:
    url = "https://hub.example/shares/v2/async/abc"
    base = fingerprint(url, [("start", "2020-10-01")], "json", "/out.json")
    assert base == fingerprint(url, [("start", "2020-10-01")], "json", "/out.json")
    assert base == fingerprint(url, (("start", "2020-10-01"),), "json", "/out.json")
    assert len(base) == 64
    assert base != fingerprint(url, [("start", "2020-10-02")], "json", "/out.json")
    assert base != fingerprint(url, [("start", "2020-10-01")], "csv", "/out.json")
    assert base != fingerprint(url, [("start", "2020-10-01")], "json", None)
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})
    assert fingerprint("a", "b") != fingerprint("b", "a")


def test_version_3_round_trips_what_recognises_the_output(tmp_path: Path) -> None:
    path = str(tmp_path / "state.json")
    state = full_state()
    state.output_tail = "ab" * 32
    state.output_end = 12346
    state.output_identity = [2049, 1234567]
    state.stalls = {"empty_pages": 3, "tokens": ["0123456789abcdef"], "pages": []}
    save_state(path, state)
    assert json.loads(Path(path).read_text())["version"] == 3
    assert load_state(path) == state


def test_a_version_2_state_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save_state(str(path), full_state())
    document = json.loads(path.read_text())
    document["version"] = 2
    del document["output_identity"], document["stalls"]
    path.write_text(json.dumps(document))
    loaded = load_state(str(path))
    assert loaded is not None and loaded.output_identity is None and loaded.stalls == {}


@pytest.mark.parametrize(("field", "value"), [
    ("output_identity", [1]), ("output_identity", [1, "2"]), ("output_identity", [1, -2]),
    ("stalls", {"empty_pages": -1}), ("stalls", {"tokens": ["not a digest"]}),
    ("stalls", {"pages": "0123456789abcdef"}), ("stalls", {"other": 1})])
def test_version_3_fields_are_checked(tmp_path: Path, field: str, value: object) -> None:
    path = tmp_path / "state.json"
    save_state(str(path), full_state())
    document = json.loads(path.read_text())
    document[field] = value
    path.write_text(json.dumps(document))
    with pytest.raises(UsageError, match=field):
        load_state(str(path))


def test_a_version_1_state_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    document = {"version": 1, "fingerprint": "f", "token": "tok", "output_offset": 10,
                "events": 3, "pages": 1, "complete": False, "last_inserted_token": None,
                "sink": {"format": "jsonl", "events": 3}, "updated": "2026-01-01T00:00:00+00:00"}
    path.write_text(json.dumps(document))
    loaded = load_state(str(path))
    assert loaded is not None and loaded.token == "tok" and loaded.output_offset == 10
    assert loaded.output_tail is None and loaded.output_end is None


@pytest.mark.parametrize(("field", "value"), [("output_tail", 5), ("output_end", "9"),
                                              ("output_end", 12344)])
def test_version_2_fields_are_checked(tmp_path: Path, field: str, value: object) -> None:
    path = tmp_path / "state.json"
    save_state(str(path), full_state())
    document = json.loads(path.read_text())
    document[field] = value
    path.write_text(json.dumps(document))
    with pytest.raises(UsageError, match=repr(field)):
        load_state(str(path))


def test_a_link_planted_at_the_old_temporary_name_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    path = tmp_path / "state.json"
    os.symlink(victim, str(path) + ".tmp")
    save_state(str(path), full_state())
    assert victim.read_text() == "precious\n"
    check_state_path(str(path))  # removes the planted link, not its target
    assert not os.path.lexists(str(path) + ".tmp") and victim.read_text() == "precious\n"
    loaded = load_state(str(path))
    assert loaded is not None and loaded.token == full_state().token


def test_temporary_names_are_unpredictable_and_never_left_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "state.json")
    used: list[str] = []
    real_replace = os.replace

    def spying_replace(source: str, target: str) -> None:
        used.append(source)
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", spying_replace)
    save_state(path, RunState(fingerprint="f"))
    save_state(path, RunState(fingerprint="f"))
    assert len(set(used)) == 2 and all(name != path + ".tmp" for name in used)
    assert all(os.path.dirname(name) == str(tmp_path) for name in used)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
def test_save_syncs_the_new_state_before_the_rename_and_the_directory_after(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "state.json")
    save_state(path, RunState(fingerprint="f", token="old"))
    calls: list[tuple[str, ...]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}")
        size = os.fstat(fd).st_size
        real_fsync(fd)
        calls.append(("fsync", target, str(size)))

    def replace(source: str, destination: str) -> None:
        calls.append(("replace", os.path.abspath(source), os.path.abspath(destination)))
        real_replace(source, destination)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    save_state(path, RunState(fingerprint="f", token="new"))
    monkeypatch.undo()

    renames = [call for call in calls if call[0] == "replace"]
    assert len(renames) == 1 and renames[0][2] == path, calls
    temporary = renames[0][1]
    assert os.path.dirname(temporary) == str(tmp_path)  # the same directory: rename is atomic
    at = calls.index(renames[0])
    synced_before = [call for call in calls[:at] if call[0] == "fsync" and call[1] == temporary]
    assert synced_before, f"the new state is not synced before the rename: {calls}"
    assert int(synced_before[-1][2]) == os.path.getsize(path)  # synced once whole
    synced_after = [call for call in calls[at + 1:] if call[0] == "fsync"]
    assert ("fsync", str(tmp_path)) in [call[:2] for call in synced_after], (
        f"the directory is not synced after the rename: {calls}")
    loaded = load_state(path)
    assert loaded is not None and loaded.token == "new"


def test_a_state_nested_too_deep_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"[" * 2_000_000 + b"]" * 2_000_000)  # within the 4 MiB a state may be
    with pytest.raises(UsageError, match="not a usable hubasync state .nested too deep"):
        load_state(str(path))
