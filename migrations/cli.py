"""``dialer db``: the schema version of the database.

    dialer db upgrade [--db URL] [--schema S] [--to REV]   bring the database to the head
    dialer db current [--db URL] [--schema S]              its revision and the code's head
    dialer db revision MESSAGE                             a new revision file after the head

``--db`` defaults to ``$DIALER_DB_URL`` (else SQLite ``var/dialer.sqlite3``), ``--schema`` to
``$DIALER_DB_SCHEMA`` (PostgreSQL). ``current`` exits 0 at the head, 1 otherwise (the
message says what to do); an unreachable database is exit 3.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from compliance.console import EXIT_NO, EXIT_OK, EXIT_UNAVAILABLE
from compliance.database import DEFAULT_SQLITE_URL, is_sqlite, make_engine
from migrations import (
    SchemaNotCurrent,
    SchemaState,
    head,
    new_revision,
    status,
    upgrade,
)

Command = Callable[[argparse.Namespace], Awaitable[int]]


def _engine(args: argparse.Namespace) -> AsyncEngine:
    url = args.db or os.environ.get("DIALER_DB_URL") or DEFAULT_SQLITE_URL
    schema = args.schema or os.environ.get("DIALER_DB_SCHEMA") or None
    if is_sqlite(url):
        path = url.partition(":///")[2].split("?", 1)[0]
        if path and path != ":memory:":
            Path(path).resolve().parent.mkdir(parents=True, exist_ok=True)
    return make_engine(url, schema=schema)


async def cmd_upgrade(args: argparse.Namespace) -> int:
    engine = _engine(args)
    try:
        before, after = await upgrade(engine, args.to)
    finally:
        await engine.dispose()
    was = before.current or ("empty" if before.state is SchemaState.EMPTY else "unversioned")
    print(f"database upgraded from {was} to revision {after.current} (head {after.head})")
    return EXIT_OK


async def cmd_current(args: argparse.Namespace) -> int:
    engine = _engine(args)
    try:
        found = await status(engine)
    finally:
        await engine.dispose()
    print(f"revision {found.current or '-'} ({found.state.value}); code head {found.head}")
    if found.state is not SchemaState.CURRENT:
        print(found.message, file=sys.stderr)
        return EXIT_NO
    return EXIT_OK


async def cmd_revision(args: argparse.Namespace) -> int:
    after = head()
    path = new_revision(args.message)
    print(f"new revision after {after}: {path}")
    return EXIT_OK


def _run(fn: Command) -> Command:
    async def handler(args: argparse.Namespace) -> int:
        try:
            return await fn(args)
        except SchemaNotCurrent as exc:
            print(f"dialer db: {exc}", file=sys.stderr)
            return EXIT_UNAVAILABLE
        except (OperationalError, OSError) as exc:
            print(f"dialer db: unavailable: {exc}", file=sys.stderr)
            return EXIT_UNAVAILABLE

    return handler


def register(subparsers: Any) -> None:
    db = subparsers.add_parser("db", help="the database schema: upgrade, current revision")
    sub = db.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, fn, text in (
        ("upgrade", cmd_upgrade, "bring the database to the code's schema (the head revision)"),
        ("current", cmd_current, "the database's revision and the code's head (exit 1 if behind)"),
    ):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--db", default=None, help="SQL URL (default $DIALER_DB_URL or SQLite)")
        p.add_argument("--schema", default=None, help="PostgreSQL schema ($DIALER_DB_SCHEMA)")
        if name == "upgrade":
            p.add_argument("--to", default="head", help="a revision (default: the head)")
        p.set_defaults(handler=_run(fn))
    p = sub.add_parser("revision", help="write a new, empty revision after the head (developers)")
    p.add_argument("message", help="what the revision changes, e.g. 'agent pause codes'")
    p.set_defaults(handler=_run(cmd_revision))
