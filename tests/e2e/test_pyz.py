"""The one-file build, run from an empty folder in isolated mode, with and without tomli.

No test reaches a package index: pip is pointed at a folder (``PIP_NO_INDEX``,
``PIP_FIND_LINKS``, its config files ignored) holding a tomli wheel made here from the copy of
tomli that pip itself carries, or holding nothing, as a machine without network would.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from typing import Any, Dict, List, Optional

import pytest

from .helpers import ROOT, share

# The interpreter outside the virtual environment, where hubasync is not installed.
PYTHON = getattr(sys, "_base_executable", sys.executable)
BUILD = os.path.join(ROOT, "tools", "build_pyz.py")


def make_tomli_wheel(folder: str) -> Optional[str]:
    """A wheel of the tomli that pip vendors (pure Python, MIT), or None if pip has none."""
    import pip

    source = os.path.join(os.path.dirname(pip.__file__), "_vendor", "tomli")
    if not os.path.isfile(os.path.join(source, "__init__.py")):
        return None
    with open(os.path.join(source, "__init__.py"), encoding="utf-8") as handle:
        version = re.search(r'__version__ = "([^"]+)"', handle.read())
    assert version is not None
    info = f"tomli-{version.group(1)}.dist-info"
    files: Dict[str, bytes] = {}
    for path in sorted(glob.glob(os.path.join(source, "*"))):
        name = os.path.basename(path)
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                files[f"{info}/LICENSE" if name == "LICENSE" else f"tomli/{name}"] = handle.read()
    files[f"{info}/METADATA"] = (f"Metadata-Version: 2.1\nName: tomli\nVersion: "
                                 f"{version.group(1)}\nRequires-Python: >=3.8\n").encode()
    files[f"{info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: hubasync-tests\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    files[f"{info}/RECORD"] = ("\n".join(record + [f"{info}/RECORD,,"]) + "\n").encode()
    wheel = os.path.join(folder, f"tomli-{version.group(1)}-py3-none-any.whl")
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


def build(target: str, wheels: str) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ, PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1",
                       PIP_FIND_LINKS=wheels)
    return subprocess.run([sys.executable, BUILD, target], capture_output=True, text=True,
                          env=environment, timeout=600, check=True)


@pytest.fixture(scope="module")
def pyz_with_tomli(tmp_path_factory: Any) -> str:
    wheels = str(tmp_path_factory.mktemp("wheels"))
    if make_tomli_wheel(wheels) is None:
        pytest.skip("this pip carries no tomli to make a wheel of")
    built = build(str(tmp_path_factory.mktemp("build") / "hubasync.pyz"), wheels)
    assert built.stderr == "", built.stderr  # no line about tomli: it is in
    return built.stdout.strip()


def alone(pyz: str, tmp_path: Any) -> Any:
    """A folder holding only a copy of the pyz."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    shutil.copy(pyz, folder / "hubasync.pyz")
    return folder


def run_pyz(folder: Any, args: List[str],
            python: str = PYTHON) -> subprocess.CompletedProcess[bytes]:
    environment = {"PATH": "/usr/bin:/bin", "APIKEY": "demo-key"}
    return subprocess.run([python, "-I", "hubasync.pyz", *args], cwd=folder,
                          capture_output=True, env=environment, timeout=60)


def test_pyz_runs_alone_from_an_empty_folder(sim: Any, pyz_with_tomli: str,
                                             tmp_path: Any) -> None:
    folder = alone(pyz_with_tomli, tmp_path)
    done = run_pyz(folder, [share(sim, "demo", "/count")])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"count": len(sim.share_events("demo"))}
    done = run_pyz(folder, [share(sim), "--limit=5", "--sort=_id", "--format=jsonl"])
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines == sim.share_events("demo")[:5]
    version = run_pyz(folder, ["--version"])
    assert version.stdout.decode().startswith("hubasync ")


def test_pyz_bundles_tomli_with_its_licence(pyz_with_tomli: str) -> None:
    with zipfile.ZipFile(pyz_with_tomli) as archive:
        names = archive.namelist()
    assert "tomli/__init__.py" in names and "__main__.py" in names
    assert any(re.fullmatch(r"tomli-[^/]+\.dist-info/(licenses/)?LICENSE", name)
               for name in names), names
    assert not any(name.startswith("hubasync/sim/") for name in names)
    assert not any(name.endswith((".so", ".pyc")) for name in names)


def pythons_without_tomllib() -> List[str]:
    """Python 3.9 and 3.10 interpreters on this machine, if any: the pyz's tomli serves them."""
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = sorted(glob.glob(os.path.join(root, "versions", "3.9.*", "bin", "python3")))
    found += sorted(glob.glob(os.path.join(root, "versions", "3.10.*", "bin", "python3")))
    return found[:1] + found[-1:] if found else []


@pytest.mark.parametrize("python", [PYTHON, *pythons_without_tomllib()])
def test_pyz_reads_a_service_config(pyz_with_tomli: str, tmp_path: Any, python: str) -> None:
    folder = alone(pyz_with_tomli, tmp_path)
    assert run_pyz(folder, ["sync", "--help"], python).returncode == 0
    (folder / "hubasync.toml").write_text(
        'directory = "out"\napikey_env = "APIKEY"\n'
        '[shares.phishing]\nurl = "https://hub.example.com/shares/v2/async/abc"\n')
    done = run_pyz(folder, ["status", "hubasync.toml"], python)
    # read and understood: one row for the share, which has never run (stale: exit 6)
    assert done.returncode == 6, done.stderr
    assert b"phishing" in done.stdout
    (folder / "hubasync.toml").write_text("directory = [\n")
    done = run_pyz(folder, ["status", "hubasync.toml"], python)
    assert done.returncode == 2 and b"hubasync.toml" in done.stderr, done.stderr


def test_without_tomli_the_build_says_so_in_one_line_and_still_builds(
        sim: Any, tmp_path: Any) -> None:
    wheels = tmp_path / "no-wheels"
    wheels.mkdir()
    built = build(str(tmp_path / "build" / "hubasync.pyz"), str(wheels))
    lines = built.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("build_pyz: tomli not bundled ("), lines
    assert "Python 3.11" in lines[0] and "README" in lines[0]
    with zipfile.ZipFile(built.stdout.strip()) as archive:
        assert not any(name.startswith("tomli") for name in archive.namelist())
    done = run_pyz(alone(built.stdout.strip(), tmp_path), [share(sim, "demo", "/count")])
    assert done.returncode == 0, done.stderr
