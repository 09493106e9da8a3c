"""The examples of README.md and docs/service.md, as a reader copies them: every TOML block is a
config that loads, and the command lines (and each option's example of the README's table) run
against the simulator, the example's host replaced by the simulator's. What cannot run here is
listed with the reason (a command that runs until stopped, a file of this machine's /etc)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from typing import Any, Dict, Iterator, List, Tuple

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASYNC_PY = os.path.join(ROOT, "async.py")
DOCS = ["README.md", os.path.join("docs", "service.md")]
KEY = "demo-key"

# Example shares -> the simulator's: API shares abc (demo) and def (s1), notification share
# def/0 (notify/0); the vendor script's :id and :index likewise.
SHARES = [("/shares/v2/async/abc", "/shares/v2/async/demo"),
          ("/shares/v2/async/def/0", "/shares/v2/async/notify/0"),
          ("/shares/v2/async/def", "/shares/v2/async/s1"),
          ("/shares/v2/async/:id/:index", "/shares/v2/async/notify/0"),
          ("/shares/v2/async/:id", "/shares/v2/async/demo")]


def blocks(language: str) -> Iterator[Tuple[str, int, str]]:
    """(file, line, text) of each fenced block of ``language`` in the docs."""
    for name in DOCS:
        with open(os.path.join(ROOT, name), encoding="utf-8") as handle:
            text = handle.read()
        for match in re.finditer(rf"^```{language}\n(.*?)^```", text, re.M | re.S):
            yield name, text.count("\n", 0, match.start()) + 1, match.group(1)


def command_lines() -> List[Tuple[str, str]]:
    """(where, line) of every command line of the docs' sh blocks that runs hubasync."""
    found = []
    for name, line, text in blocks("sh"):
        for number, command in enumerate(text.splitlines()):
            command = command.strip()
            if command.startswith(("hubasync ", "./async.py ")):
                found.append((f"{name}:{line + 1 + number}", command))
    return found


def on_the_simulator(text: str, sim: Any) -> str:
    text = text.replace("https://hub.example.com", sim.url).replace("http://127.0.0.1:8080",
                                                                     sim.url)
    for example, ours in SHARES:
        text = text.replace(example, ours)
    return text


def environment(**extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith("_proxy") and k not in ("APIKEY", "REQUEST_METHOD")}
    env.update(APIKEY=KEY, PYTHONPATH=os.path.join(ROOT, "src"), **extra)
    return env


def run_cli(argv: List[str], cwd: Any, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, ASYNC_PY, *argv], capture_output=True, text=True,
                          cwd=cwd, env=environment(**env), timeout=120,
                          stdin=subprocess.DEVNULL)


@pytest.fixture
def docs_sim(make_sim: Any) -> Any:
    return make_sim(shares=1, events=300, page_max=100)


def a_token(sim: Any, tmp_path: Any) -> str:
    done = run_cli([f"{sim.url}/shares/v2/async/demo", "--limit=5"], tmp_path)
    assert done.returncode == 0, done.stderr
    return done.stderr.strip().splitlines()[-1]


# --- the TOML configs --------------------------------------------------------------------------

def config_text(text: str, sim: Any, directory: Any) -> str:
    """A docs config made to run here: its shares on the simulator, its files in ``directory``,
    its metrics on any free port."""
    text = on_the_simulator(text, sim)
    text = re.sub(r'^directory = "[^"]*"', f'directory = "{directory}"', text, flags=re.M)
    return re.sub(r'^metrics = "[^"]*"', 'metrics = "127.0.0.1:0"', text, flags=re.M)


@pytest.mark.parametrize(("where", "text"), [(f"{name}:{line}", text)
                                             for name, line, text in blocks("toml")])
def test_every_toml_example_loads(where: str, text: str, tmp_path: Any) -> None:
    from hubasync.service.config import load_config

    path = tmp_path / "hubasync.toml"
    path.write_text(text.replace('"/var/lib/hubasync"', f'"{tmp_path}"'))
    config = load_config(str(path), {"APIKEY": KEY, "CUST42_KEY": "key-42"})
    assert config.shares, where


def test_the_readme_config_runs_a_pass_and_reports_its_status(docs_sim: Any,
                                                              tmp_path: Any) -> None:
    name, _, text = next(block for block in blocks("toml") if block[0] == "README.md")
    path = tmp_path / "hubasync.toml"
    path.write_text(config_text(text, docs_sim, tmp_path / "data"))
    (tmp_path / "data").mkdir()
    ran = [line for where, line in command_lines()
           if where.startswith("README.md") and line.startswith("hubasync s")]
    assert {line.split(" #")[0].split()[1] for line in ran} == {"sync", "status"}
    for line in ran:
        argv = shlex.split(line, comments=True)[1:]
        if argv[0] == "sync" and "--once" not in argv:
            continue  # follows the shares until stopped: --once is the same pass, once
        argv = [str(path) if arg == "/etc/hubasync/hubasync.toml" else arg for arg in argv]
        done = run_cli(argv, tmp_path)
        assert done.returncode == 0, (line, done.stderr)
    assert (tmp_path / "data" / "phishing.jsonl").stat().st_size > 0
    assert (tmp_path / "data" / "cust42.jsonl").stat().st_size > 0


# --- the command lines ---------------------------------------------------------------------------

WITH_A_CONFIG = "needs a config: test_the_readme_config_runs_a_pass_and_reports_its_status"
SKIPPED = {
    "--follow": "runs until stopped (tests/e2e/test_follow.py runs it)",
    "[options]": "a synopsis, not a command",
    "hubasync sync ": WITH_A_CONFIG,
    "hubasync status ": WITH_A_CONFIG,
}


@pytest.mark.parametrize(("where", "line"), command_lines())
def test_every_command_example_runs(where: str, line: str, docs_sim: Any,
                                    tmp_path: Any) -> None:
    for words, why in SKIPPED.items():
        if words in line:
            pytest.skip(why)
    line = on_the_simulator(line, docs_sim).replace("URL", f"{docs_sim.url}/shares/v2/async/demo")
    if "<token>" in line:
        line = line.replace("<token>", a_token(docs_sim, tmp_path))
    argv = shlex.split(line, comments=True)
    done = run_cli(argv[1:], tmp_path)
    assert done.returncode == 0, (where, line, done.stderr)
    assert done.stdout or any(tmp_path.iterdir()), (where, line)


# --- each option's example in the README's table ----------------------------------------------

def option_examples() -> List[Tuple[str, str]]:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        section = handle.read().split("### Options", 1)[1].split("\n### ", 1)[0]
    table = section[section.index("\n| option |"):].strip().split("\n\n", 1)[0]
    examples = []
    for row in table.splitlines():
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        if len(cells) == 3 and cells[2].startswith("`") and cells[2].endswith("`"):
            examples.append((cells[0], cells[2].strip("`")))
    return examples


NOT_ALONE = {
    "$": "the reader's own key or token",
    "~": "the reader's own file",
    "http": "a proxy of the reader's network",
    ".pem": "the reader's own CA",
    "--state": "with -o: tests/e2e/test_resume.py",
    "--follow": "runs until stopped",
    "--interval": "with --follow",
    "--max-lag": "with --to: tests/e2e/test_delivery_cli.py",
    "--recover": "with --state",
    "--append": "an existing file: tests/core/test_resumable.py runs it",
    "export ": "not an option",
}


@pytest.mark.parametrize(("option", "example"), option_examples())
def test_every_option_example_runs(option: str, example: str, docs_sim: Any,
                                   tmp_path: Any) -> None:
    for words, why in NOT_ALONE.items():
        if words in example:
            pytest.skip(why)
    argv = shlex.split(example)
    limit = [] if {"-n", "--limit"} & set(argv) else ["--limit=3"]
    done = run_cli([f"{docs_sim.url}/shares/v2/async/demo", *limit, *argv], tmp_path)
    assert done.returncode == 0, (option, example, done.stderr)


def test_the_examples_were_found() -> None:
    assert len(list(blocks("toml"))) >= 2
    assert len(command_lines()) >= 10
    assert {example for _, example in option_examples()} >= {
        "--param filter=type=phishing", "--start -24h", "--total", "-o events.json"}
