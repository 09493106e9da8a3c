"""Temporary files a killed run left: told apart by name (ours alone, never another file's),
and a folder listed once for a service's many shares."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from hubasync.files.leftovers import (
    ListedOnce,
    mkstemp_temporary,
    new_output_temporary,
    remove_temporaries,
)


def test_the_names_mkstemp_makes_are_recognised_and_no_other(tmp_path: Path) -> None:
    ours = mkstemp_temporary("a.state")
    for _ in range(50):
        fd, path = tempfile.mkstemp(prefix=".a.state.", suffix=".tmp", dir=tmp_path)
        os.close(fd)
        assert ours(os.path.basename(path))
    for name in (".a.state.k3j_x9a.tmp", ".a.state.k3j_x9abc.tmp", ".a.state.K3J_X9AB.tmp",
                 ".a.state.k3j-x9ab.tmp", ".b.state.k3j_x9ab.tmp", ".a.state.2.k3j_x9ab.tmp",
                 ".a.state.k3j_x9ab.tmpx", "a.state.k3j_x9ab.tmp", ".a.state.k3j_x9ab"):
        assert not ours(name), name


def test_a_new_outputs_names_are_recognised_and_no_other() -> None:
    ours = new_output_temporary("s.json")
    for _ in range(50):
        assert ours(f".s.json.new.{secrets.token_hex(4)}")
    for name in (".s.json.new.0a1b2c3", ".s.json.new.0a1b2c3d4", ".s.json.new.0A1B2C3D",
                 ".s.json.new.0a1b2c3g", ".s.jsonl.new.0a1b2c3d", ".t.json.new.0a1b2c3d",
                 "s.json.new.0a1b2c3d", ".s.json.0a1b2c3d"):
        assert not ours(name), name


def test_only_the_temporaries_are_removed_a_link_not_its_target(tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.write_text("keep")
    (tmp_path / ".s.json.new.0a1b2c3d").symlink_to(target)
    (tmp_path / ".s.json.new.ffffffff").write_text("[]\n")
    (tmp_path / "s.json").write_text("[]\n")
    (tmp_path / ".s.json.new.nothex00").write_text("not ours")
    remove_temporaries(str(tmp_path / "s.json"), new_output_temporary("s.json"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".s.json.new.nothex00", "precious", "s.json"]
    assert target.read_text() == "keep"
    remove_temporaries(str(tmp_path / "missing" / "s.json"), new_output_temporary("s.json"))


def test_listed_once_lists_each_folder_once(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "one").write_text("")
    listing = ListedOnce()
    assert listing(str(tmp_path / "a")) == ["one"]
    (tmp_path / "a" / "two").write_text("")
    assert listing(str(tmp_path / "a")) == ["one"]  # from memory
    assert listing(str(tmp_path / "b")) == []
    assert listing(str(tmp_path / "missing")) == []
