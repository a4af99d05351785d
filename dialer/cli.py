"""The ``dialer`` console command: one argparse tree, subcommands contributed by each package.

Each module in ``COMMAND_MODULES`` exposes ``register(subparsers)``; every leaf
parser sets ``handler`` to a function taking the parsed namespace and
returning an exit code (a coroutine function is run with ``asyncio.run``).

Exit codes and ``UserError`` are ``compliance.console``'s (re-exported here).
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

from compliance.console import EXIT_BAD_INPUT as EXIT_BAD_INPUT
from compliance.console import EXIT_NO as EXIT_NO
from compliance.console import EXIT_OK as EXIT_OK
from compliance.console import EXIT_UNAVAILABLE as EXIT_UNAVAILABLE
from compliance.console import UserError as UserError
from migrations import SchemaNotCurrent

COMMAND_MODULES: tuple[str, ...] = (
    "compliance.cli",
    "recordings.cli",
    "identity.cli",
    "casework.cli",
    "migrations.cli",
    "agi_scripts.cli",
    "dialer.commands",
    "reports.cli",
    "simulation.cli",
)


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
    except SchemaNotCurrent as exc:
        # a database older than the code: every command and process refuses it alike
        print(f"dialer {args.command}: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return 130
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
