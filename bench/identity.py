"""Byte identity of the outputs before and after a change: this checkout against a baseline.

    python bench/identity.py --baseline DIR [--sim] [--events N]

``DIR`` is another checkout (e.g. ``git worktree add /tmp/base main``). Two checks:

- **same chunks** (always): a corpus of bodies (the simulator's generated events and odd ones:
  nested objects, escapes, unicode, NUL, lone surrogates, big numbers, NaN, pretty-printed
  events, separators inside strings, empty pages, bad JSON) is cut into chunks in several ways
  (1 byte, 7 bytes, 64 KiB, random sizes, whole) and fed, page after page, through each
  checkout's splitter and format writer (``json``, ``jsonl``, ``csv``, with and without a
  projection, ``--strict``), each in a process of its own with that checkout's ``src`` on the
  path; this checkout runs twice, with and without ``orjson``. Every output file, or the error
  (its type and message), must be the same bytes. A JSON array's bytes depend on where the
  chunks fall (batches are joined with ``,\\n``), so only the same chunks can be compared.
- **end to end** (``--sim``): both checkouts' ``async.py`` download a simulator's share in
  every format (``--strict`` too; this checkout with and without orjson); JSON lines and CSV
  must be the same bytes, a JSON array the same events byte for byte (its line breaks between
  batches follow the network's chunks).

Exit status 0 when everything is identical, 1 otherwise (the first differences are printed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# (name, format, strict, projection)
VARIANTS: Tuple[Tuple[str, str, bool, Tuple[str, ...]], ...] = (
    ("json", "json", False, ()),
    ("jsonl", "jsonl", False, ()),
    ("csv", "csv", False, ()),
    ("csv-projection", "csv", False, ("feed", "ip", "n", "list", "missing")),
    ("strict-json", "json", True, ()),
    ("strict-csv", "csv", True, ()),
)

WORKER = r"""
import json, os, sys
src, corpus, out, fast = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
sys.path.insert(0, src)
from hubasync.events.splitter import EventSplitter
from hubasync.events.formats import format_writer
from hubasync.files.output import open_output
try:
    from hubasync.events import parsing
    parsing.FAST = fast and parsing.FAST
except ImportError:
    pass
variants = json.loads(sys.argv[5])
cases = json.load(open(os.path.join(corpus, "cases.json")))
for case in cases:
    for name, fmt, strict, projection in variants:
        path = os.path.join(out, f"{case['name']}.{name}")
        output = open_output(path, atomic=False)
        writer = format_writer(fmt, output, projection=tuple(projection))
        try:
            for page in case["pages"]:
                splitter = EventSplitter(strict=strict)
                with open(os.path.join(corpus, page["body"]), "rb") as handle:
                    body = handle.read()
                pos = 0
                for size in page["chunks"]:
                    writer.write(splitter.feed_batch(body[pos:pos + size]))
                    pos += size
                splitter.finish()
                writer.commit()
            writer.close(complete=True)
        except Exception as error:
            writer.close(complete=False)
            with open(path, "ab") as handle:
                handle.write(f"\nERROR {type(error).__name__}: {error}\n".encode())
"""


def odd_events(rnd: random.Random) -> List[Dict[str, object]]:
    """Events that exercise every path: escapes, unicode, NUL, surrogates, lists, numbers."""
    texts = ["plain", "with, comma", 'with "quotes"', "line\nbreak", "cr\rlf\r\n", "tab\there",
             "back\\slash", "ends with backslash\\", "\\\"", "}{", "},{", "[]", "{\"a\":1}", "]",
             "é ü 中国电信", "emoji 😀", "nul \0 inside", "\0", "", " ", "\u2028\u2029", "\x7f",
             "\x01\x1f", "'single'", '"', '""', ",", "\r\n", "only\rcr", "a" * 300]
    events: List[Dict[str, object]] = []
    for i in range(400):
        event: Dict[str, object] = {"feed": rnd.choice(texts), "ip": f"10.0.{i % 256}.{i // 256}"}
        for key in rnd.sample(["n", "list", "text", "other key", "nul\0key", "ünï", "extra",
                               "deep"], rnd.randrange(0, 5)):
            kind = rnd.randrange(7)
            if kind == 0:
                event[key] = rnd.choice([0, -1, 12345678901234567890123, 1.5, -0.0, 1e-7, 1e300,
                                         2 ** 64, 2 ** 63 - 1, True, False, None])
            elif kind == 1:
                event[key] = [rnd.choice(texts) for _ in range(rnd.randrange(4))]
            elif kind == 2:
                event[key] = [1, "a", None, [2.5]]
            elif kind == 3:
                event[key] = {"nested": {"deeper": [rnd.choice(texts)]}}
            else:
                event[key] = rnd.choice(texts)
        events.append(event)
    return events


def encodings(events: Sequence[Dict[str, object]]) -> Dict[str, bytes]:
    """The same events as different hubs might send them."""
    compact = [json.dumps(e, ensure_ascii=False, separators=(",", ":")) for e in events]
    ascii_ = [json.dumps(e, separators=(",", ":")) for e in events]
    spaced = [json.dumps(e, ensure_ascii=False) for e in events]
    pretty = [json.dumps(e, ensure_ascii=False, indent=2) for e in events]
    return {
        "compact": ("[" + ",".join(compact) + "]").encode(),
        "ascii": ("[" + ",".join(ascii_) + "]").encode(),
        "spaced": ("[ " + ", ".join(spaced) + " ]\n").encode(),
        "lines": ("[\n" + ",\n".join(compact) + "\n]").encode(),
        "pretty": ("[" + ",\n".join(pretty) + "]").encode(),
    }


def special_bodies() -> Dict[str, bytes]:
    """Bodies written by hand: edge cases of the splitter and of JSON itself."""
    return {
        "empty": b"[]",
        "empty-spaced": b" [ ] \n",
        "one": b'[{"a":"b"}]',
        "empty-event": b"[{},{},{}]",
        "nan": b'[{"a":NaN,"b":Infinity},{"c":-Infinity}]',
        "bignum": b'[{"a":123456789012345678901234567890,"b":1E400,"c":-0,"d":1.0}]',
        "surrogate": b'[{"a":"\\ud800","b":"\\udfff x"},{"c":"\\ud83d\\ude00"}]',
        "nul": b'[{"a":"\\u0000","b\\u0000":"x\\u0000y"}]',
        "dup-keys": b'[{"a":1,"b":2,"a":3}]',
        "bad-literal": b'[{"a":tru},{"b":1}]',
        "bad-missing-value": b'[{"a":},{"b":1}]',
        "bad-raw-newline": b'[{"a":"x\ny"},{"b":1}]',
        "bad-raw-tab": b'[{"a":"x\ty"}]',
        "bad-escape": b'[{"a":"\\q\\"},{"b":1}]',
        "bad-backslash-brace": b'[{"a":"b"\\{},{"c":1}]',
        "bad-utf8": b'[{"a":"\xff"}]',
        "bad-not-object": b'[{"a":1},2]',
        "bad-not-object-in-run": b'[{"a":1},2,{"b":1}]',
        "bad-cut": b'[{"a":1},{"b":',
        "bad-trailing": b'[{"a":1}] x',
        "bad-unbalanced": b'[{"a":[1}]',
        "separator-in-string": b'[{"a":"},{"},{"b":"}, {"},{"c":"x"}]',
        "escaped-quote-end": b'[{"a":"\\\\"},{"b":"\\\\\\""}]',
    }


def chunkings(size: int, rnd: random.Random) -> Dict[str, List[int]]:
    def fixed(step: int) -> List[int]:
        return [min(step, size - pos) for pos in range(0, size, step)] or [0]

    sizes: List[int] = []
    left = size
    while left > 0:
        step = min(left, rnd.choice([1, 2, 3, 5, 17, 100, 1000, 4096, 70000]))
        sizes.append(step)
        left -= step
    chunks = {"whole": [size], "64k": fixed(64 << 10), "random": sizes or [0]}
    if size <= 20000:
        chunks["1"] = fixed(1)
        chunks["7"] = fixed(7)
    return chunks


def sim_body(events: int) -> bytes:
    """A results body of the simulator's own generated events."""
    sys.path.insert(0, os.path.join(ROOT, "src"))
    from hubasync.sim.generator import generate

    _, blobs, _ = generate(7, events, 1_790_000_000)
    return b"[" + b",".join(blobs) + b"]"


def build_corpus(directory: str, sim_events: int) -> None:
    rnd = random.Random(20261206)
    cases = []
    bodies: Dict[str, bytes] = {}
    for name, body in encodings(odd_events(rnd)).items():
        bodies[f"odd-{name}"] = body
    bodies.update(special_bodies())
    if sim_events:
        bodies["sim"] = sim_body(sim_events)
    for name, body in bodies.items():
        with open(os.path.join(directory, f"{name}.body"), "wb") as handle:
            handle.write(body)
        for how, chunks in chunkings(len(body), rnd).items():
            cases.append({"name": f"{name}-{how}", "pages": [{"body": f"{name}.body",
                                                               "chunks": chunks}]})
    # Several pages into one output: the header, the brackets and the commits between pages.
    cases.append({"name": "pages", "pages": [
        {"body": "odd-compact.body", "chunks": [len(bodies["odd-compact"])]},
        {"body": "empty.body", "chunks": [2]},
        {"body": "odd-pretty.body", "chunks": chunkings(len(bodies["odd-pretty"]), rnd)["random"]},
    ]})
    with open(os.path.join(directory, "cases.json"), "w", encoding="utf-8") as handle:
        json.dump(cases, handle)


def run_worker(src: str, corpus: str, out: str, fast: bool) -> None:
    os.makedirs(out)
    subprocess.run([sys.executable, "-c", WORKER, src, corpus, out, "1" if fast else "0",
                    json.dumps(VARIANTS)], check=True)


def compare_dirs(before: str, after: str, label: str) -> List[str]:
    problems = []
    names = sorted(set(os.listdir(before)) | set(os.listdir(after)))
    for name in names:
        try:
            with open(os.path.join(before, name), "rb") as handle:
                old = handle.read()
            with open(os.path.join(after, name), "rb") as handle:
                new = handle.read()
        except FileNotFoundError:
            problems.append(f"{label}: {name} exists on one side only")
            continue
        if old != new:
            at = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old),
                                                                                  len(new)))
            problems.append(f"{label}: {name} differs at byte {at}: {old[at - 40:at + 40]!r} "
                            f"!= {new[at - 40:at + 40]!r}")
    return problems


def same_chunks(baseline: str, workdir: str, sim_events: int) -> Tuple[int, List[str]]:
    corpus = os.path.join(workdir, "corpus")
    os.makedirs(corpus)
    build_corpus(corpus, sim_events)
    run_worker(os.path.join(baseline, "src"), corpus, os.path.join(workdir, "before"), False)
    problems = []
    for fast in (True, False):
        label = "same chunks, " + ("orjson" if fast else "standard library")
        after = os.path.join(workdir, f"after-{int(fast)}")
        run_worker(os.path.join(ROOT, "src"), corpus, after, fast)
        problems += compare_dirs(os.path.join(workdir, "before"), after, label)
    return len(os.listdir(os.path.join(workdir, "before"))), problems


def events_of(data: bytes) -> List[bytes]:
    sys.path.insert(0, os.path.join(ROOT, "src"))
    from hubasync.events.splitter import EventSplitter

    splitter = EventSplitter(max_event_size=1 << 30)
    events = splitter.feed(data)
    splitter.finish()
    return events


def end_to_end(baseline: str, workdir: str, events: int) -> Tuple[int, List[str]]:
    sim = subprocess.Popen([sys.executable, "-m", "hubasync.sim", "--port", "0", "--events",
                            str(events), "--page-max", str(max(events // 7, 1))],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    problems: List[str] = []
    compared = 0
    try:
        assert sim.stdout is not None
        url = sim.stdout.readline().strip() + "/shares/v2/async/demo"
        env = dict(os.environ, APIKEY="demo-key")
        for fmt, extra in (("json", []), ("jsonl", []), ("csv", []), ("json", ["--strict"]),
                           ("csv", ["--projection", "feed,ip,uuid,nope"])):
            outputs = []
            for script in ([os.path.join(baseline, "async.py")], [os.path.join(ROOT, "async.py")],
                           [os.path.join(HERE, "without_orjson.py"),
                            os.path.join(ROOT, "async.py")]):
                path = os.path.join(workdir, f"e2e-{len(outputs)}.{fmt}")
                subprocess.run([sys.executable, *script, url, "--format", fmt, "-o", path,
                                *extra], env=env, check=True)
                with open(path, "rb") as handle:
                    outputs.append(handle.read())
                os.unlink(path)
            old = outputs[0]
            for new, how in zip(outputs[1:], ("", ", no orjson")):
                compared += 1
                label = f"end to end, {fmt} {' '.join(extra)}{how}".replace(" ,", ",").strip()
                if fmt == "json":
                    if events_of(old) != events_of(new):
                        problems.append(f"{label}: the events differ")
                elif old != new:
                    problems.append(f"{label}: the outputs differ ({len(old)} and {len(new)} "
                                    "bytes)")
    finally:
        sim.terminate()
        sim.wait(15)
        if sim.stdout is not None:
            sim.stdout.close()
    return compared, problems


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--baseline", required=True, metavar="DIR",
                        help="the checkout to compare with (e.g. a worktree of main)")
    parser.add_argument("--sim", action="store_true", help="also compare end to end")
    parser.add_argument("--events", type=int, default=20000, metavar="N",
                        help="simulator events in the corpus and end to end (default 20000)")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="hubasync-identity-")
    try:
        count, problems = same_chunks(os.path.abspath(args.baseline), workdir, args.events)
        print(f"same chunks: {count} outputs compared, {len(problems)} differ")
        if args.sim:
            compared, more = end_to_end(os.path.abspath(args.baseline), workdir, args.events)
            print(f"end to end: {compared} downloads compared, {len(more)} differ")
            problems += more
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for problem in problems[:20]:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
