"""CLI subcommands of the dialer engine: ``dialer serve`` and ``dialer agent``.

``serve`` runs the ARI application, the HTTP API for agents and supervisors,
the FastAGI server and the recordings HTTP app until SIGTERM/SIGINT (then:
stop pacing, drain calls, close). ``dialer demo`` lives with the simulation
(``simulation.cli``). ``agent add|list|remove`` keeps the agent directory: the
only softphone endpoints the dialer calls for an agent.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError

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


async def cmd_agent(args: argparse.Namespace) -> int:
    """Add, list or remove agents in the agent directory (agent id -> endpoint, PBX)."""
    from compliance.cli import db_url
    from compliance.tables import open_engine
    from dialer.agent_directory import AgentDirectory, DirectoryError

    try:
        engine = await open_engine(db_url(args))
    except (OperationalError, DBAPIError, OSError) as exc:
        print(f"dialer agent: error: database unavailable: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    directory = AgentDirectory(engine)
    try:
        if args.action == "add":
            try:
                entry = await directory.add(
                    args.agent_id, args.endpoint, pbx=args.pbx, added_by=args.by
                )
            except DirectoryError as exc:
                raise UserError(str(exc)) from exc
            print(f"agent {entry.agent_id}: {entry.endpoint} on {entry.pbx}")
        elif args.action == "remove":
            if not await directory.remove(args.agent_id):
                raise UserError(f"agent {args.agent_id!r} is not in the directory")
            print(f"agent {args.agent_id} removed")
        else:
            entries = await directory.list_all()
            if args.json:
                print(
                    json.dumps(
                        [
                            {"agent": e.agent_id, "endpoint": e.endpoint, "pbx": e.pbx}
                            for e in entries
                        ]
                    )
                )
            else:
                for e in entries:
                    print(f"{e.agent_id}\t{e.endpoint}\t{e.pbx}\t{e.added_by}")
    finally:
        await engine.dispose()
    return 0


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

    db = argparse.ArgumentParser(add_help=False)
    db.add_argument("--db", metavar="URL", help="database URL (env DIALER_DB_URL)")
    db.add_argument("--json", action="store_true", help="JSON output for scripts")
    agent = subparsers.add_parser(
        "agent",
        help="the agent directory: the only softphones the dialer calls for agents",
        description=cmd_agent.__doc__,
    )
    actions = agent.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", parents=[db], help="add an agent and its softphone")
    add.add_argument("agent_id", metavar="AGENT_ID")
    add.add_argument("--endpoint", required=True, help="softphone, e.g. PJSIP/701")
    add.add_argument("--pbx", default="default", help="the PBX the endpoint is on")
    add.add_argument("--by", default="admin", help="who adds it (kept with the entry)")
    actions.add_parser("list", parents=[db], help="list the directory")
    rm = actions.add_parser("remove", parents=[db], help="remove an agent")
    rm.add_argument("agent_id", metavar="AGENT_ID")
    agent.set_defaults(handler=cmd_agent)


__all__ = ["EXIT_BAD_INPUT", "register"]
