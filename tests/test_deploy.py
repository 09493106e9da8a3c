"""deploy/: the systemd unit, the Dockerfile and the example config, checked as far as can be here.

The unit is verified by systemd-analyze when the machine has it, and read as an INI file in any
case; the Dockerfile's instructions are parsed (no container engine runs in the tests); the
example config is loaded with a fake key, where each of the two deployments puts it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from hubasync.service.config import ServiceConfig, load_config

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "hubasync.service"
DOCKERFILE = DEPLOY / "Dockerfile"
EXAMPLE = DEPLOY / "hubasync.toml"
CONFIG_PATH = "/etc/hubasync/hubasync.toml"
FAKE_KEY = "fake-key-for-the-example"


def unit_entries() -> List[Tuple[str, str, str]]:
    """(section, key, value) of every assignment in the unit, in order (keys may repeat)."""
    entries = []
    section = ""
    for raw in UNIT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, equals, value = line.partition("=")
        assert equals, f"not an assignment in the unit: {raw!r}"
        assert not value.endswith("\\"), "continued lines are not expected here"
        entries.append((section, key.strip(), value.strip()))
    return entries


def unit_values(section: str) -> Dict[str, List[str]]:
    found: Dict[str, List[str]] = {}
    for entry_section, key, value in unit_entries():
        if entry_section == section:
            found.setdefault(key, []).append(value)
    return found


def one(values: Dict[str, List[str]], key: str) -> str:
    assert len(values.get(key, [])) == 1, f"{key} must be set once: {values.get(key)}"
    return values[key][0]


def dockerfile_instructions() -> List[Tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuations joined, comments dropped."""
    instructions: List[Tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        instructions.append((word.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def load_example(credentials: Path) -> ServiceConfig:
    credentials.mkdir(parents=True, exist_ok=True)
    (credentials / "apikey").write_text(FAKE_KEY + "\n", encoding="utf-8")
    return load_config(str(EXAMPLE), {"CREDENTIALS_DIRECTORY": str(credentials)})


def test_the_example_config_loads_with_a_fake_key(tmp_path: Path) -> None:
    config = load_example(tmp_path)
    assert config.directory == "/var/lib/hubasync"
    assert config.metrics == ("127.0.0.1", 9464)
    assert [share.name for share in config.shares] == ["phishing", "cust42"]
    assert all(share.apikey == FAKE_KEY for share in config.shares)
    assert all(share.query.sort == "_id" for share in config.shares)
    assert config.shares[0].output == "/var/lib/hubasync/phishing.jsonl"


def test_the_unit_runs_the_service_as_its_own_user_with_the_key_as_a_credential(
        tmp_path: Path) -> None:
    service = unit_values("Service")
    assert one(service, "ExecStart") == f"/usr/local/bin/hubasync sync {CONFIG_PATH}"
    assert one(service, "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one(service, "Restart") == "on-failure"
    assert one(service, "DynamicUser") == "yes"
    assert one(service, "User") not in ("root", "0", "")
    assert one(service, "StateDirectory") == "hubasync"
    credential, _, source = one(service, "LoadCredential").partition(":")
    assert source == "/etc/hubasync/apikey"
    for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                       ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                       ("CapabilityBoundingSet", "")):
        assert one(service, key) == value, key
    assert set(one(service, "RestrictAddressFamilies").split()) >= {"AF_INET", "AF_INET6"}
    # a bad config (2) and a second instance (75) are not retried by restarting
    assert set(one(service, "RestartPreventExitStatus").split()) == {"2", "75"}
    assert one(unit_values("Install"), "WantedBy") == "multi-user.target"
    assert "network-online.target" in one(unit_values("Unit"), "After")
    # the config's directory is the StateDirectory, and its key file is the credential systemd
    # puts in $CREDENTIALS_DIRECTORY (/run/credentials/UNIT/ID)
    credentials = tmp_path / "run" / "credentials" / "hubasync.service"
    credentials.mkdir(parents=True)
    (credentials / credential).write_text(FAKE_KEY + "\n", encoding="utf-8")
    config = load_config(str(EXAMPLE), {"CREDENTIALS_DIRECTORY": str(credentials)})
    assert config.directory == f"/var/lib/{one(service, 'StateDirectory')}"
    assert all(share.apikey == FAKE_KEY for share in config.shares)


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here; the unit is still read as INI above")
    executable = Path(sys.executable).parent / "hubasync"
    assert executable.exists(), "the package's hubasync script is installed beside python"
    # verify checks that ExecStart's program exists: point it at this environment's hubasync
    text = UNIT.read_text(encoding="utf-8").replace("/usr/local/bin/hubasync", str(executable))
    copy = tmp_path / "hubasync.service"
    copy.write_text(text, encoding="utf-8")
    result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "SYSTEMD_LOG_COLOR": "0"})
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if "hubasync.service" in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


def test_systemd_analyze_would_catch_a_mistake(tmp_path: Path) -> None:
    """The check above can fail: a misspelt key in a copy of the unit is reported."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    text = UNIT.read_text(encoding="utf-8").replace("/usr/local/bin/hubasync", sys.executable)
    copy = tmp_path / "hubasync.service"
    copy.write_text(text.replace("Restart=on-failure", "Restart=on-failur"), encoding="utf-8")
    result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True,
                            timeout=120)
    assert "hubasync.service" in result.stdout + result.stderr


def test_the_dockerfile_builds_a_slim_non_root_image(tmp_path: Path) -> None:
    instructions = dockerfile_instructions()
    words = [word for word, _ in instructions]
    assert instructions[0] == ("FROM", "python:3.12-slim")
    assert words.count("FROM") == 1
    entrypoint = [args for word, args in instructions if word == "ENTRYPOINT"]
    assert len(entrypoint) == 1
    assert json.loads(entrypoint[0]) == ["hubasync", "sync", CONFIG_PATH]
    users = [args for word, args in instructions if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    last_user = max(i for i, word in enumerate(words) if word == "USER")
    installs = [i for i, (word, args) in enumerate(instructions)
                if word == "RUN" and re.search(r"\bpip install\b", args)]
    assert installs and max(installs) < last_user, "pip runs as root, the service does not"
    user = users[-1].split(":")[0]
    assert any(word == "RUN" and re.search(rf"\buseradd\b.*\b{user}\b", args)
               for word, args in instructions), f"the image makes the user {user}"
    # every file copied in exists, and the example config lands where ENTRYPOINT reads it
    copied = {}
    for word, args in instructions:
        if word == "COPY":
            *sources, destination = args.split()
            for source in sources:
                assert (ROOT / source).exists(), source
                copied[source] = destination
    assert copied["deploy/hubasync.toml"] == CONFIG_PATH
    assert {"pyproject.toml", "README.md", "src"} <= set(copied)
    # the volume is the config's directory, and the key is where the config looks for it
    volumes = [json.loads(args) for word, args in instructions if word == "VOLUME"]
    env = " ".join(args for word, args in instructions if word == "ENV")
    match = re.search(r"\bCREDENTIALS_DIRECTORY=(\S+)", env)
    assert match is not None
    secrets_dir = match[1]
    config = load_example(tmp_path / secrets_dir.lstrip("/"))
    assert volumes == [[config.directory]]
    assert secrets_dir == "/run/secrets"
