"""``hubasync-sim`` / ``python -m hubasync.sim``: run the simulator from the command line."""

from __future__ import annotations

import argparse
import os
import signal
import ssl
import sys
import time
from typing import List, Optional

from .config import SimConfig
from .dataset import DataError
from .faults import ALL_FAULTS, FAULTS, HOSTILE_FAULTS, parse_spec
from .hec import HecConfig, HecReceiver
from .simulator import Simulator


def _fault(text: str) -> str:
    try:
        parse_spec(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    """The command line (every option is documented in docs/simulator.md)."""
    d = SimConfig()
    p = argparse.ArgumentParser(
        prog="hubasync-sim",
        description="A local Arctic Hub speaking the async share API, with faults on demand.",
        epilog="Faults: " + ", ".join(FAULTS) + ". Hostile faults (never drawn at random "
               "unless named): " + ", ".join(HOSTILE_FAULTS) + ". See docs/simulator.md.",
    )
    p.add_argument("--host", default=d.host, help="address to bind (default %(default)s)")
    p.add_argument("--port", type=int, default=d.port,
                   help="port (default %(default)s; 0 picks a free one)")
    p.add_argument("--apikey", default=d.apikey, help="the API key (default %(default)s)")
    p.add_argument("--events", type=int, default=d.events, metavar="N",
                   help="generated events in the API share (default %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of events and random faults")
    p.add_argument("--page-max", type=int, default=d.page_max, metavar="N",
                   help="most events in one page (default %(default)s)")
    p.add_argument("--job-latency", type=float, default=d.job_latency, metavar="SECONDS",
                   help="time a job takes to finish (default %(default)s)")
    p.add_argument("--retry-after", type=float, default=d.retry_after, metavar="SECONDS",
                   help="Retry-After on 202 status answers and 429/503 (default %(default)s)")
    p.add_argument("--result-ttl", type=float, default=d.result_ttl, metavar="SECONDS",
                   help="results expire this long after the job is done (default %(default)s)")
    p.add_argument("--data", metavar="FILE", help="serve the events of a JSON-lines file")
    p.add_argument("--grow", type=float, default=d.grow, metavar="N",
                   help="append N new events a second to the API share")
    p.add_argument("--relative-locations", action="store_true",
                   help="answer with path-relative Location headers")
    p.add_argument("--fault", action="append", default=[], type=_fault, metavar="NAME[:COUNT]",
                   help="misbehave on the first COUNT chances (default 1); repeatable")
    p.add_argument("--fault-rate", type=float, default=d.fault_rate, metavar="P",
                   help="random mode: each chance misbehaves with probability P")
    p.add_argument("--fault-delay", type=float, default=d.fault_delay, metavar="SECONDS",
                   help="delay of the slow, trickle and stall faults (default %(default)s)")
    p.add_argument("--event-size", type=int, metavar="BYTES",
                   help="pad generated events to about this many bytes of JSON")
    p.add_argument("--shares", type=int, default=d.shares, metavar="N",
                   help="also serve API shares s1 ... sN, each with --events events of its own "
                        "(default %(default)s)")
    p.add_argument("--refuse-key", action="append", default=[], metavar="SHARE",
                   help="share id (demo, notify, sK) that answers 401 to the right key; "
                        "repeatable")
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"),
                   help="serve https with this PEM certificate chain and private key")
    h = HecConfig()
    p.add_argument("--hec-port", type=int, metavar="PORT",
                   help="also run a simulated Splunk HEC on this port (0 picks a free one)")
    p.add_argument("--hec-token", default=h.token, metavar="TOKEN",
                   help="the HEC token it accepts (default %(default)s)")
    p.add_argument("--hec-no-ack", action="store_true",
                   help="the HEC's indexer acknowledgement is off")
    p.add_argument("--hec-busy", type=float, default=h.busy_rate, metavar="RATE",
                   help="each HEC event post answers 503 Server is busy with probability RATE")
    p.add_argument("--hec-retry-after", type=float, metavar="SECONDS",
                   help="Retry-After on the HEC's 503 answers")
    p.add_argument("--hec-max-content-length", type=int, default=h.max_content_length,
                   metavar="BYTES", help="larger HEC bodies answer 413 (default %(default)s)")
    p.add_argument("--hec-ack-delay", type=float, default=h.ack_delay, metavar="SECONDS",
                   help="time from indexing until an ack reads true (default %(default)s)")
    p.add_argument("--log", action="store_true", help="log each request on stderr")
    p.add_argument("--list-faults", action="store_true", help="list the faults and exit")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """Run until Ctrl-C or SIGTERM. Returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.list_faults:
        try:
            for fault in ALL_FAULTS.values():
                mark = " [hostile]" if fault.hostile else ""
                print(f"{fault.name:30} {fault.help}{mark}", flush=True)
        except BrokenPipeError:  # `| head`: the reader has all it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    config = SimConfig(
        host=args.host, port=args.port, apikey=args.apikey, events=args.events, seed=args.seed,
        page_max=args.page_max, job_latency=args.job_latency, retry_after=args.retry_after,
        result_ttl=args.result_ttl, data=args.data, grow=args.grow,
        relative_locations=args.relative_locations, faults=tuple(args.fault),
        fault_rate=args.fault_rate, fault_delay=args.fault_delay, event_size=args.event_size,
        shares=args.shares, refused_shares=tuple(args.refuse_key), log=args.log,
        tls_cert=args.tls[0] if args.tls else None, tls_key=args.tls[1] if args.tls else None,
    )
    for path in args.tls or ():
        if not os.path.isfile(path):
            print(f"hubasync-sim: --tls: no such file: {path}", file=sys.stderr)
            return 2
    started = time.monotonic()
    hec: Optional[HecReceiver] = None
    try:
        if args.hec_port is not None:
            hec = HecReceiver(HecConfig(
                host=args.host, port=args.hec_port, token=args.hec_token, ack=not args.hec_no_ack,
                busy_rate=args.hec_busy, retry_after=args.hec_retry_after,
                max_content_length=args.hec_max_content_length, ack_delay=args.hec_ack_delay,
                seed=args.seed, tls_cert=config.tls_cert, tls_key=config.tls_key))
        sim = Simulator(config)
        sim.start()
    except (ValueError, DataError, ssl.SSLError) as exc:
        print(f"hubasync-sim: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"hubasync-sim: cannot listen on {config.host}:{config.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    if hec is not None:
        try:
            hec.start()
        except (OSError, ssl.SSLError) as exc:
            sim.stop()
            print(f"hubasync-sim: cannot listen on {args.host}:{args.hec_port} (HEC): "
                  f"{getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
            return 2
    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Set explicitly: a process started in the background inherits SIGINT ignored.
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    try:  # from here on, Ctrl-C at any moment stops cleanly
        print(sim.url, flush=True)
        print(f"# try: hubasync {sim.share_url()} --apikey {sim.apikey} --limit 1000",
              flush=True)
        print(f"# sync URL: {sim.share_url(sync=True)}", flush=True)
        if hec is not None:
            print(f"# HEC: hec+{hec.url} (token from --hec-token, indexer acknowledgement "
                  f"{'on' if hec.config.ack else 'off'})", flush=True)
        size = len(sim.dataset.share("demo"))
        more = f", s1..s{config.shares}" if config.shares else ""
        print(f"hubasync-sim: {size} events in share demo (notify/0, notify/1{more} too) ready in "
              f"{time.monotonic() - started:.1f} s; Ctrl-C stops", file=sys.stderr, flush=True)
        sim.serve_until_stopped()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
        if hec is not None:
            hec.stop()
    print("hubasync-sim: stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
