"""``dialer user ...``: manage the people and integrations who use the system.

    dialer user add NAME --role R [--agent-id A] [--password | --password-stdin]
    dialer user passwd NAME [--password-stdin]       set or reset a password (prompted)
    dialer user role NAME ROLE [--agent-id A]        change the role
    dialer user disable NAME | enable NAME           a disabled user's tokens and sessions stop
    dialer user unlock [NAME] [--address A]          clear a lock-out before it ends by itself
    dialer user sign-out NAME                        end every session of a user
    dialer user list [--json]
    dialer user token NAME [--label L]               an API token, printed once
    dialer user revoke TOKEN_ID | tokens

Options: ``--db URL`` (default ``$DIALER_DB_URL`` or SQLite ``var/dialer.sqlite3``;
PostgreSQL schema from ``$DIALER_DB_SCHEMA``), ``--actor NAME`` (who the audit log names;
default ``cli:<login>``). Every change is written to the access audit log. Passwords are
read from the terminal (twice, not echoed) or, with ``--password-stdin``, from the first
line of standard input; never from the command line, where other users could see them.
Exit codes follow ``dialer.cli``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.exc import OperationalError

from compliance.console import EXIT_OK, EXIT_UNAVAILABLE, UserError
from compliance.database import DEFAULT_SQLITE_URL
from identity.model import Principal, Role, User
from identity.names import BadIdentityName, check_user_name
from identity.store import IdentityError, IdentityStore


def _actor(args: argparse.Namespace) -> Principal:
    name = args.actor or f"cli:{getpass.getuser()}"
    try:
        check_user_name(name.replace("cli:", "cli-", 1))
    except BadIdentityName as exc:
        raise UserError(f"--actor: {exc}") from exc
    return Principal(name, Role.ADMIN)


@asynccontextmanager
async def open_store(args: argparse.Namespace) -> AsyncIterator[IdentityStore]:
    from recordings.audit import AccessAudit
    from recordings.schema import open_engine as open_recordings_engine

    url = args.db or os.environ.get("DIALER_DB_URL") or DEFAULT_SQLITE_URL
    schema = os.environ.get("DIALER_DB_SCHEMA") or None
    # the audit log's tables (hash chain head and guards) must exist before an entry
    await (await open_recordings_engine(url, schema=schema)).dispose()
    store = await IdentityStore.open(url, schema=schema, audit=AccessAudit())
    try:
        yield store
    finally:
        await store.aclose()


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise UserError("--password-stdin: standard input is empty")
        return line.rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise UserError("the two passwords differ; nothing changed")
    return first


def _describe(user: User) -> str:
    parts = [user.role.value]
    if user.agent_id:
        parts.append(f"agent {user.agent_id}")
    if user.has_password:
        parts.append("password set")
    if not user.active:
        parts.append("disabled")
    return f"{user.name} ({', '.join(parts)})"


async def cmd_add(args: argparse.Namespace) -> int:
    password = _read_password(args) if args.password or args.password_stdin else None
    async with open_store(args) as store:
        user = await store.add_user(
            _actor(args), args.name, Role(args.role), agent_id=args.agent_id, password=password
        )
    print(f"user {_describe(user)} added")
    return EXIT_OK


async def cmd_passwd(args: argparse.Namespace) -> int:
    password = _read_password(args)
    async with open_store(args) as store:
        user = await store.set_password(_actor(args), args.name, password)
    print(f"password of {user.name} set; their sessions ended")
    return EXIT_OK


async def cmd_role(args: argparse.Namespace) -> int:
    async with open_store(args) as store:
        user = await store.set_role(
            _actor(args), args.name, Role(args.role), agent_id=args.agent_id
        )
    print(f"user {_describe(user)}; their sessions ended")
    return EXIT_OK


async def cmd_disable(args: argparse.Namespace) -> int:
    async with open_store(args) as store:
        user = await store.set_active(_actor(args), args.name, False)
    print(f"user {_describe(user)}: tokens and sessions no longer work")
    return EXIT_OK


async def cmd_enable(args: argparse.Namespace) -> int:
    async with open_store(args) as store:
        user = await store.set_active(_actor(args), args.name, True)
    print(f"user {_describe(user)} enabled")
    return EXIT_OK


async def cmd_unlock(args: argparse.Namespace) -> int:
    if args.name is None and args.address is None:
        raise UserError("give a user NAME, --address A, or both")
    async with open_store(args) as store:
        cleared = await store.reset_lockout(_actor(args), name=args.name, address=args.address)
    print(f"lock-out cleared ({cleared} counter(s) removed)")
    return EXIT_OK


async def cmd_sign_out(args: argparse.Namespace) -> int:
    async with open_store(args) as store:
        ended = await store.revoke_sessions(_actor(args), args.name)
    print(f"{ended} session(s) of {args.name} ended")
    return EXIT_OK


async def cmd_list(args: argparse.Namespace) -> int:
    async with open_store(args) as store:
        found = await store.list_users()
    if args.json:
        rows = [
            {
                "name": u.name,
                "role": u.role.value,
                "agent_id": u.agent_id,
                "active": u.active,
                "password": u.has_password,
            }
            for u in found
        ]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for u in found:
            print(_describe(u))
    return EXIT_OK


async def cmd_token(args: argparse.Namespace) -> int:
    async with open_store(args) as store:
        tid, token = await store.issue_token(_actor(args), args.name, label=args.label)
    print(f"token {tid} for {args.name} (shown once, only its SHA-256 is stored):", file=sys.stderr)
    print(token)
    return EXIT_OK


async def cmd_revoke(args: argparse.Namespace) -> int:
    async with open_store(args) as store:
        await store.revoke_token(_actor(args), args.token_id)
    print(f"token {args.token_id} revoked")
    return EXIT_OK


async def cmd_tokens(args: argparse.Namespace) -> int:
    async with open_store(args) as store:
        rows = await store.list_tokens()
    for r in rows:
        state = "revoked " + r["revoked_at"].isoformat() if r["revoked_at"] else "active"
        print(f"{r['id']:>5}  {r['name']}  {r['label'] or '-'}  {state}")
    return EXIT_OK


Command = Callable[[argparse.Namespace], Awaitable[int]]


def _run(fn: Command) -> Command:
    """Map identity errors to bad input (exit 2) and an unreachable database to exit 3."""

    async def handler(args: argparse.Namespace) -> int:
        try:
            return await fn(args)
        except IdentityError as exc:
            raise UserError(str(exc)) from exc
        except (OperationalError, OSError) as exc:
            print(f"dialer {args.command}: unavailable: {exc}", file=sys.stderr)
            return EXIT_UNAVAILABLE

    return handler


def _leaf(sub: Any, name: str, fn: Command, help_text: str) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--db", default=None, help="SQL URL (default $DIALER_DB_URL or SQLite)")
    p.add_argument("--actor", default=None, help="who the audit log names (default cli:<login>)")
    p.set_defaults(handler=_run(fn))
    return p


def _password_args(p: argparse.ArgumentParser, *, optional: bool) -> None:
    if optional:
        p.add_argument("--password", action="store_true", help="prompt for a password")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )


def register(subparsers: Any) -> None:
    usr = subparsers.add_parser("user", help="people and API users: roles, passwords, tokens")
    usub = usr.add_subparsers(dest="action", metavar="ACTION", required=True)
    roles = [r.value for r in Role]
    p = _leaf(usub, "add", cmd_add, "add a user with a role")
    p.add_argument("name")
    p.add_argument("--role", choices=roles, required=True)
    p.add_argument(
        "--agent-id", default="", help="the dialer agent an agent user is (default: the name)"
    )
    _password_args(p, optional=True)
    p = _leaf(usub, "passwd", cmd_passwd, "set or reset a password (ends the user's sessions)")
    p.add_argument("name")
    _password_args(p, optional=False)
    p = _leaf(usub, "role", cmd_role, "change a user's role (ends the user's sessions)")
    p.add_argument("name")
    p.add_argument("role", choices=roles)
    p.add_argument("--agent-id", default=None)
    p = _leaf(usub, "disable", cmd_disable, "disable a user: tokens and sessions stop working")
    p.add_argument("name")
    p = _leaf(usub, "enable", cmd_enable, "enable a disabled user")
    p.add_argument("name")
    p = _leaf(usub, "unlock", cmd_unlock, "clear the lock-out of a user and/or an address")
    p.add_argument("name", nargs="?", default=None)
    p.add_argument("--address", default=None, help="a client address")
    p = _leaf(usub, "sign-out", cmd_sign_out, "end every session of a user")
    p.add_argument("name")
    p = _leaf(usub, "list", cmd_list, "list users")
    p.add_argument("--json", action="store_true")
    p = _leaf(usub, "token", cmd_token, "issue an API token (printed once)")
    p.add_argument("name")
    p.add_argument("--label", default="")
    p = _leaf(usub, "revoke", cmd_revoke, "revoke an API token")
    p.add_argument("token_id", type=int)
    _leaf(usub, "tokens", cmd_tokens, "list API tokens (never the tokens themselves)")
