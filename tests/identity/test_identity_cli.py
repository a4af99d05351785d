"""``dialer user ...`` end to end on SQLite, through ``dialer.cli.main``: users with roles
and passwords (Chinese names printed as text), tokens, disable, unlock, sign-out."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from dialer.cli import EXIT_BAD_INPUT, main
from identity.model import SignedIn
from identity.store import IdentityStore

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite3"
    monkeypatch.delenv("DIALER_DB_SCHEMA", raising=False)
    return url


def run(
    argv: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    stdin: str = "",
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def sign_in(db: str, name: str, password: str) -> bool:
    async def attempt() -> bool:
        store = await IdentityStore.open(db)
        try:
            return isinstance(await store.sign_in(name, password, "127.0.0.1"), SignedIn)
        finally:
            await store.aclose()

    return asyncio.run(attempt())


def test_users_and_tokens(
    db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(
        ["user", "add", "carol", "--role", "compliance", "--db", db], capsys, monkeypatch
    )
    assert code == 0 and "carol (compliance)" in out
    code, out, err = run(
        ["user", "token", "carol", "--label", "desk", "--db", db], capsys, monkeypatch
    )
    token = out.strip()
    assert code == 0 and len(token) >= 43 and "shown once" in err
    code, out, err = run(
        ["user", "add", "carol", "--role", "agent", "--db", db], capsys, monkeypatch
    )
    assert code == EXIT_BAD_INPUT and "already exists" in err
    code, out, _ = run(["user", "tokens", "--db", db], capsys, monkeypatch)
    assert code == 0 and "carol" in out and "desk" in out and token not in out
    code, out, _ = run(["user", "revoke", "1", "--db", db], capsys, monkeypatch)
    assert code == 0
    code, out, err = run(["user", "revoke", "1", "--db", db], capsys, monkeypatch)
    assert code == EXIT_BAD_INPUT and "no active token 1" in err


def test_passwords_roles_and_lockout(
    db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    add = ["user", "add", "王主管", "--role", "supervisor", "--password-stdin", "--db", db]
    code, out, _ = run(add, capsys, monkeypatch, stdin="春天的第一通电话\n")
    assert code == 0 and "王主管 (supervisor, password set) added" in out
    assert sign_in(db, "王主管", "春天的第一通电话")

    code, out, _ = run(["user", "list", "--json", "--db", db], capsys, monkeypatch)
    assert code == 0 and '"王主管"' in out and "\\u" not in out  # Chinese as text
    assert json.loads(out) == [
        {"name": "王主管", "role": "supervisor", "agent_id": "", "active": True, "password": True}
    ]

    code, _, err = run(
        ["user", "passwd", "王主管", "--password-stdin", "--db", db],
        capsys,
        monkeypatch,
        stdin="short\n",
    )
    assert code == EXIT_BAD_INPUT and "at least 8" in err
    code, out, _ = run(
        ["user", "passwd", "王主管", "--password-stdin", "--db", db],
        capsys,
        monkeypatch,
        stdin="another long one\n",
    )
    assert code == 0 and not sign_in(db, "王主管", "春天的第一通电话")
    assert sign_in(db, "王主管", "another long one")

    code, out, _ = run(["user", "role", "王主管", "admin", "--db", db], capsys, monkeypatch)
    assert code == 0 and "王主管 (admin, password set)" in out

    for _ in range(5):
        assert not sign_in(db, "王主管", "wrong password")
    assert not sign_in(db, "王主管", "another long one")  # locked
    code, out, _ = run(["user", "unlock", "王主管", "--db", db], capsys, monkeypatch)
    assert code == 0 and "1 counter" in out
    assert sign_in(db, "王主管", "another long one")

    code, out, _ = run(["user", "disable", "王主管", "--db", db], capsys, monkeypatch)
    assert code == 0 and "disabled" in out
    assert not sign_in(db, "王主管", "another long one")
    code, out, _ = run(["user", "enable", "王主管", "--db", db], capsys, monkeypatch)
    assert code == 0 and sign_in(db, "王主管", "another long one")
    code, out, _ = run(["user", "sign-out", "王主管", "--db", db], capsys, monkeypatch)
    assert code == 0 and "session(s) of 王主管 ended" in out

    code, _, err = run(["user", "unlock", "--db", db], capsys, monkeypatch)
    assert code == EXIT_BAD_INPUT and "NAME" in err
    code, _, err = run(["user", "role", "nobody", "admin", "--db", db], capsys, monkeypatch)
    assert code == EXIT_BAD_INPUT and "no user nobody" in err


def test_the_changes_are_in_the_audit_log(
    db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIALER_NUMBER_KEY", "test-number-secret-0123456789abcdef")
    run(["user", "add", "ann", "--role", "agent", "--actor", "li", "--db", db], capsys, monkeypatch)
    code, out, _ = run(["audit", "show", "--db", db], capsys, monkeypatch)
    assert code == 0 and "user.add" in out and "li" in out
