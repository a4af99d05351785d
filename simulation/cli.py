"""``dialer demo``: the one-command demo as a subcommand of the ``dialer`` console command.

It needs no setup at all: it starts the simulated Asterisk in-process, an
embedded SQLite database in a temporary directory, simulated agents and a
sample lead list, runs for ``--seconds`` and prints the campaign funnel.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from compliance.console import EXIT_BAD_INPUT, UserError


async def cmd_demo(args: argparse.Namespace) -> int:
    # Imported here so that every other ``dialer`` subcommand starts without loading the stack.
    from simulation.demo import DemoOptions, run_demo

    if args.seconds <= 0:
        raise UserError("--seconds must be > 0")
    if not 1 <= args.agents <= 500:
        raise UserError("--agents must be between 1 and 500")
    if not 1 <= args.leads <= 100_000:
        raise UserError("--leads must be between 1 and 100000")
    if args.time_scale <= 0:
        raise UserError("--time-scale must be > 0")
    options = DemoOptions(
        seconds=args.seconds,
        agents=args.agents,
        leads=args.leads,
        time_scale=args.time_scale,
        pacing=args.pacing,
        target_abandon=args.target_abandon,
        seed=args.seed,
        progress=not args.quiet,
        verbose=bool(getattr(args, "verbose", False)),
        amd=not args.no_amd,
        console_port=args.console_port,
    )
    try:
        return await run_demo(options)
    except ValueError as exc:
        print(f"dialer demo: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="one-command demo: simulated Asterisk, agents and leads; prints the funnel",
    )
    demo.add_argument("--seconds", type=float, default=60.0, help="how long to run (default 60)")
    demo.add_argument("--agents", type=int, default=10, help="simulated agents (default 10)")
    demo.add_argument("--leads", type=int, default=500, help="sample leads (default 500)")
    demo.add_argument(
        "--time-scale",
        type=float,
        default=10.0,
        help="simulated seconds per real second in the PBX (default 10)",
    )
    demo.add_argument(
        "--pacing", choices=("predictive", "progressive", "ratio"), default="predictive"
    )
    demo.add_argument("--target-abandon", type=float, default=0.03)
    demo.add_argument("--seed", type=int, default=2026)
    demo.add_argument("--quiet", action="store_true", help="no live progress line")
    demo.add_argument(
        "--no-amd",
        action="store_true",
        help="connect answering machines to agents instead of detecting them (AMD)",
    )
    demo.add_argument(
        "--console-port",
        type=int,
        default=None,
        metavar="PORT",
        help="also serve the agent console on 127.0.0.1:PORT (0: any free port) and print "
        "the address and a demo agent's login: a person takes simulated calls in the browser",
    )
    demo.set_defaults(handler=cmd_demo)


__all__ = ["cmd_demo", "register"]
