"""CLI subcommand of the dialer engine: ``dialer serve``.

``serve`` runs the ARI application, the HTTP API for agents and supervisors,
the FastAGI server and the recordings HTTP app until SIGTERM/SIGINT (then:
stop pacing, drain calls, close). ``dialer demo`` lives with the simulation
(``simulation.cli``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from compliance.console import EXIT_BAD_INPUT, EXIT_UNAVAILABLE, UserError

logger = logging.getLogger(__name__)


async def cmd_serve(args: argparse.Namespace) -> int:
    """Run the dialer: ARI app, HTTP API, FastAGI server, recordings (until SIGTERM)."""
    from dialer.app import StartupError, serve
    from dialer.config import ConfigError, load_settings

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        raise UserError(str(exc)) from exc
    try:
        return await serve(settings)
    except StartupError as exc:
        print(f"dialer serve: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE


def register(subparsers: Any) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="run the dialer: ARI app, HTTP API, FastAGI server, recordings",
        description=cmd_serve.__doc__ or "run the dialer",
    )
    serve.add_argument(
        "--config",
        "-c",
        default=None,
        help="TOML settings file (DIALER__SECTION__KEY environment variables override it)",
    )
    serve.set_defaults(handler=cmd_serve)


__all__ = ["EXIT_BAD_INPUT", "register"]
