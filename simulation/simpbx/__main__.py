"""``python -m simulation.simpbx --port 8088``: run the simulated Asterisk until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from simulation.simpbx.clock import ClockMode
from simulation.simpbx.server import start_simpbx


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulation.simpbx",
        description="Simulated Asterisk (ARI subset) for the dialer's demo and tests.",
    )
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``python -m simulation.simpbx`` and ``dialer simpbx``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    parser.add_argument("--port", type=int, default=8088, help="TCP port (0 = any free port)")
    parser.add_argument("--user", default="dialer", help="ARI user name")
    parser.add_argument("--password", default="dialer-secret", help="ARI password")
    parser.add_argument(
        "--clock",
        choices=[m.value for m in ClockMode],
        default=ClockMode.REAL.value,
        help="real time (default) or manual (advance with POST /_sim/advance)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="simulated seconds per real second (10 = ten times faster)",
    )
    parser.add_argument("--recordings", default=None, help="directory for recording files")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


async def serve(args: argparse.Namespace) -> None:
    sim = await start_simpbx(
        host=args.host,
        port=args.port,
        clock=args.clock,
        time_scale=args.time_scale,
        recordings_dir=args.recordings,
        username=args.user,
        password=args.password,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"simpbx listening: {sim.base_url} (events: {sim.ws_url}?app=dialer)", flush=True)
    try:
        await stop.wait()
    finally:
        await sim.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.time_scale <= 0:
        print("simpbx: error: --time-scale must be > 0", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    try:
        asyncio.run(serve(args))
    except OSError as exc:
        print(f"simpbx: error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
