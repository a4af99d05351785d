"""The ``dialer`` console command: one argparse tree, subcommands contributed by each package.

Each module in ``COMMAND_MODULES`` exposes ``register(subparsers)``; every leaf
parser sets ``handler`` to a function taking the parsed namespace and
returning an exit code (a coroutine function is run with ``asyncio.run``).

Exit codes (the same for every subcommand):
  0  success; for ``check``: the call is allowed
  1  the business answer is "no" (``check``: refused; ``verify``: problems found)
  2  bad input: usage, a malformed number, file, policy or unknown name
  3  a service or file could not be reached (database, Redis, ARI)
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import logging
import sys
from collections.abc import Sequence
from typing import Any

EXIT_OK = 0
EXIT_NO = 1
EXIT_BAD_INPUT = 2
EXIT_UNAVAILABLE = 3

COMMAND_MODULES: tuple[str, ...] = (
    "compliance.cli",
    "recordings.cli",
    "agi_scripts.cli",
    "dialer.commands",
    "simulation.cli",
)


class UserError(Exception):
    """Bad input from the person at the keyboard; printed without a traceback, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dialer",
        description="Outbound calling for Asterisk: compliance gate, predictive dialer, "
        "FastAGI checks, recordings as evidence.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from dialer.logmasking import install

    install()  # no full phone number in any log line, SQL parameters at -v included
    handler: Any = args.handler
    try:
        if inspect.iscoroutinefunction(handler):
            code = asyncio.run(handler(args))
        else:
            code = handler(args)
    except UserError as exc:
        print(f"dialer {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
