"""``dialer simpbx``: the simulated Asterisk as a subcommand of the ``dialer`` console command.

Add ``"simulation.simpbx.cli"`` to ``dialer.cli.COMMAND_MODULES`` to expose it; the
same server also runs as ``python -m simulation.simpbx``.
"""

from __future__ import annotations

import argparse
from typing import Any

from compliance.console import UserError
from simulation.simpbx.__main__ import add_arguments, serve


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "simpbx",
        help="run the simulated Asterisk (ARI subset) for demos and tests",
        description="Simulated Asterisk speaking the ARI subset the dialer uses.",
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)


async def run(args: argparse.Namespace) -> int:
    if args.time_scale <= 0:
        raise UserError(f"--time-scale must be > 0, not {args.time_scale}")
    await serve(args)
    return 0
