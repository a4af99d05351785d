"""What every recordings-side CLI module shares (``recordings.cli``, ``casework.cli``):
the common options, the service opened from them, the actor, times, error mapping.

Kept apart from ``recordings.cli`` so that the modules contributing subcommands to
``dialer complaint`` and ``dialer audit`` import it without importing each other.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import OperationalError

from compliance.console import EXIT_UNAVAILABLE, UserError
from identity.model import Principal, Role
from recordings.config import ConfigError, RecordingsConfig
from recordings.naming import BadName, check_ident
from recordings.pii import NumberKeyError, NumberKeys
from recordings.schema import open_engine
from recordings.service import RecordingsError, RecordingsService
from recordings.signing import SigningKeyError
from recordings.store import FileStore


def actor(args: argparse.Namespace, role: Role) -> Principal:
    name = args.actor or f"cli:{getpass.getuser()}"
    try:
        check_ident(name.replace("cli:", "cli-", 1), "actor")
    except BadName as exc:
        raise UserError(str(exc)) from exc
    return Principal(name, role)


@asynccontextmanager
async def open_service(
    args: argparse.Namespace, *, blacklist: bool = False
) -> AsyncIterator[RecordingsService]:
    """Build the service from the CLI options and the environment; dispose it afterwards."""
    from compliance.cli import policy_of
    from compliance.policy import PolicyError

    try:
        config = RecordingsConfig.from_env(db_url=args.db, store_dir=args.store)
        # Read even when unused: a bad --policy is an error in every command, not only some.
        policy = policy_of(args)
        keys = NumberKeys.from_env(plan=policy.numbers)
        keys.signer(config.signing_key_file)  # a bad key file is named now, not mid-command
    except (ConfigError, NumberKeyError, PolicyError, SigningKeyError) as exc:
        raise UserError(str(exc)) from exc
    engine = await open_engine(config.db_url, schema=config.db_schema)
    list_engine = None
    redis_client = None
    try:
        black = None
        if blacklist:
            from compliance.lists import ListStore, RedisListMirror
            from compliance.tables import open_engine as open_compliance_engine
            from recordings.blacklist import ListStoreBlacklist

            list_engine = await open_compliance_engine(config.db_url, schema=config.db_schema)
            mirror = None
            redis_url = os.environ.get("DIALER_REDIS_URL")
            if redis_url:
                # A dialer on the Redis ledger reads the lists from this mirror (as
                # ``dialer dnc`` does): a complaint must reach it, not only SQL.
                import redis.asyncio as aioredis

                redis_client = aioredis.Redis.from_url(redis_url)
                prefix = os.environ.get("DIALER_REDIS_PREFIX") or "dialer:"
                mirror = RedisListMirror(redis_client, prefix=prefix + "lists:")
            # The policy's numbering plan: the gate looks numbers up under the same keys.
            lists = ListStore(list_engine, plan=policy.numbers, mirror=mirror)
            black = ListStoreBlacklist(lists)
        store = FileStore(config.store_dir)
        yield RecordingsService(engine, store, keys, config=config, blacklist=black)
    finally:
        await engine.dispose()
        if list_engine is not None:
            await list_engine.dispose()
        if redis_client is not None:
            await redis_client.aclose()


def parse_time(value: str, what: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise UserError(f"{what}: {value!r} is not an ISO 8601 time") from exc
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def run_handler(coro_fn: Any) -> Any:
    """Wrap a command: map service errors to UserError (exit 2), unreachable DB to exit 3."""

    async def handler(args: argparse.Namespace) -> int:
        try:
            result: int = await coro_fn(args)
            return result
        except (RecordingsError, BadName) as exc:
            raise UserError(str(exc)) from exc
        except (OperationalError, OSError) as exc:
            print(f"dialer {args.command}: unavailable: {exc}", file=sys.stderr)
            return EXIT_UNAVAILABLE

    return handler


def common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db", default=None, help="SQL URL (default $DIALER_DB_URL or sqlite var/dialer.sqlite3)"
    )
    p.add_argument(
        "--store",
        default=None,
        help="recording store (default $DIALER_RECORDINGS_DIR or var/recordings)",
    )
    p.add_argument(
        "--actor", default=None, help="who is acting, for the audit log (default cli:<login>)"
    )
    p.add_argument(
        "--policy",
        metavar="FILE",
        default=None,
        help="policy file, for its numbering plan (default $DIALER_POLICY or the packaged one)",
    )


def leaf(sub: Any, name: str, fn: Any, help_text: str) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    common_options(p)
    p.set_defaults(handler=run_handler(fn))
    return p
