"""Schema migrations on SQLite and PostgreSQL.

- A database made by the previous release (its ``create_all`` code, captured in
  ``previous_release``), filled with rows in every table, is upgraded with nothing lost,
  and the code of today works on it (old users' tokens, the audit chain, the gate's tables).
- Revision 0001 makes exactly the previous release's schema; the head makes exactly the
  tables the code declares (so a table change without a revision fails here).
- A process refuses a database older than the code (exit 3, naming ``dialer db upgrade``)
  and brings a brand-new empty one to the head by itself.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from previous_release import attempts_table as attempts
from previous_release import (
    audit_head,
    campaigns,
    complaint_recordings,
    complaints,
    contact_events,
    create_previous_release,
    customers,
    decisions,
    desk_calls,
    desk_grants,
    list_audit,
    list_entries,
    recordings,
    tokens,
    users,
)
from previous_release import leads as leads_table
from previous_release import metadata as previous_metadata
from sqlalchemy import Connection, MetaData, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations
from compliance.database import make_engine
from compliance.tables import open_engine as open_compliance_engine
from dialer.cli import main
from identity.model import Principal, Role, SignedIn
from identity.store import IdentityStore, token_digest
from migrations import SchemaNotCurrent, SchemaState
from recordings import audit

pytestmark = pytest.mark.timeout(120)
T0 = datetime(2026, 11, 2, 2, 30, tzinfo=UTC)
OLD_TOKEN = "an-api-token-issued-by-the-previous-release-0123456789"


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """(url, schema): the `sqlite_url` file, or a fresh `pg_target` schema on PostgreSQL."""
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
        return url, None
    target = request.getfixturevalue("pg_target")
    return target.url, target.schema


@pytest.fixture
async def engine(db: tuple[str, str | None]) -> AsyncIterator[AsyncEngine]:
    url, schema = db
    made = make_engine(url, schema=schema)
    try:
        yield made
    finally:
        await made.dispose()


async def fill(engine: AsyncEngine) -> None:
    """Rows in every table of the previous release, as its code would have written them."""
    t = T0
    async with engine.begin() as conn:
        await conn.execute(customers.insert(), [{"number_key": "13812345678"}])
        await conn.execute(
            contact_events.insert(),
            [
                dict(
                    number_key="13812345678",
                    at=t,
                    kind="attempt",
                    campaign="春季贷款",
                    product="loan",
                    outcome="answered",
                    attempt_id="a1",
                    recorded_at=t,
                    resolved_at=t + timedelta(minutes=3),
                ),
                dict(
                    number_key="13812345678",
                    at=t,
                    kind="refusal",
                    campaign="春季贷款",
                    product="loan",
                    outcome="refused",
                    attempt_id=None,
                    recorded_at=t,
                    resolved_at=None,
                ),
            ],
        )
        await conn.execute(
            decisions.insert(),
            [
                dict(
                    number_key="13812345678",
                    at=t,
                    decided_at=t,
                    campaign="春季贷款",
                    product="loan",
                    attempt_id="a1",
                    allowed=True,
                    reserved=True,
                    codes="",
                    reasons="[]",
                    retry_at=None,
                    policy_version="2026.1",
                )
            ],
        )
        await conn.execute(
            list_entries.insert(),
            [
                dict(
                    number_key="13987654321",
                    list_kind="dnc",
                    reason="complaint",
                    source="cli",
                    actor="carol",
                    note="客户投诉",
                    added_at=t,
                )
            ],
        )
        await conn.execute(
            list_audit.insert(),
            [
                dict(
                    at=t,
                    action="add",
                    number_key="13987654321",
                    list_kind="dnc",
                    reason="complaint",
                    source="cli",
                    actor="carol",
                    detail="{}",
                )
            ],
        )
        await conn.execute(
            campaigns.insert(),
            [
                dict(
                    name="春季贷款",
                    script="您好",
                    products='["loan"]',
                    caller_id="4001234567",
                    ring_timeout=25,
                    hours='{"days": [0, 1, 2, 3, 4, 5]}',
                    retry="{}",
                    pacing_method="predictive",
                    pacing_params="{}",
                    state="running",
                    created_at=t,
                    updated_at=t,
                )
            ],
        )
        await conn.execute(
            leads_table.insert(),
            [
                dict(
                    campaign="春季贷款",
                    number_key="13812345678",
                    name="王先生",
                    segment="retail",
                    product="loan",
                    assigned_at=t,
                    dialled_number=None,
                    status="done",
                    reasons="[]",
                    attempts=1,
                    next_attempt_at=None,
                    claimed_by="",
                    claimed_at=None,
                    updated_at=t,
                )
            ],
        )
        rec = await conn.execute(
            recordings.insert().returning(recordings.c.id),
            [
                dict(
                    name="rec-a1",
                    attempt_id="a1",
                    campaign="春季贷款",
                    agent="701",
                    origin="dialer",
                    number_hmac="f" * 64,
                    number_masked="138****5678",
                    started_at=t,
                    duration_ms=95_000,
                    format="wav",
                    size_bytes=1_520_044,
                    sha256="a" * 64,
                    path=f"aa/aa/{'a' * 64}.wav",
                    retain_until=t + timedelta(days=365),
                    legal_hold=True,
                    ingested_at=t,
                )
            ],
        )
        rec_id = rec.scalar_one()
        case = await conn.execute(
            complaints.insert().returning(complaints.c.id),
            [
                dict(
                    number_hmac="f" * 64,
                    number_masked="138****5678",
                    number_enc=b"\x01\x02",
                    channel="call",
                    text="态度不好",
                    received_at=t,
                    registered_by="carol",
                    status="open",
                    company_at_fault=None,
                    judgement_note="",
                    penalty_note="",
                    order_cancelled=False,
                    refund=Decimal("12.50"),
                    judged_by="",
                    judged_at=None,
                    reply="",
                    closed_by="",
                    closed_at=None,
                )
            ],
        )
        await conn.execute(
            complaint_recordings.insert(),
            [dict(complaint_id=case.scalar_one(), recording_id=rec_id)],
        )
        user = await conn.execute(
            users.insert().returning(users.c.id),
            [dict(name="ann", role="agent", agent_id="701", active=True, created_at=t)],
        )
        await conn.execute(
            tokens.insert(),
            [
                dict(
                    user_id=user.scalar_one(),
                    token_sha256=token_digest(OLD_TOKEN),
                    label="desk",
                    created_at=t,
                    revoked_at=None,
                )
            ],
        )
        await conn.execute(
            desk_grants.insert(),
            [
                dict(
                    extension="230",
                    requester="alice",
                    approvers="bob,carol",
                    starts_at=t,
                    expires_at=t + timedelta(days=30),
                    reason="出差",
                    created_at=t,
                    revoked_at=None,
                    revoked_by="",
                )
            ],
        )
        await conn.execute(
            desk_calls.insert(),
            [
                dict(
                    call_id="c1",
                    extension="230",
                    month="2026-11",
                    ended_at=t,
                    number_key="02088886666",
                    kind="domestic_long_distance",
                    dial="1790902088886666",
                    billsec=61,
                    cost_fen=14,
                )
            ],
        )
        await conn.execute(
            attempts.insert(),
            [
                dict(
                    attempt_id="a1",
                    campaign="春季贷款",
                    lead_id="1",
                    number="13812345678",
                    product="loan",
                    channel_id="dl-a1",
                    stage="done",
                    phase="ended",
                    outcome="answered",
                    reasons="",
                    answered=True,
                    connected=True,
                    abandoned=False,
                    agent_id="701",
                    recording="rec-a1",
                    recording_seconds=95.0,
                    ring_seconds=8.5,
                    talk_seconds=90.0,
                    disposition="order",
                    disposition_product="loan",
                    order_confirmed=True,
                    note="",
                    try_no=1,
                    connected_at=t,
                    ended_at=t + timedelta(minutes=2),
                    created_at=t,
                    updated_at=t,
                )
            ],
        )
        for i in range(3):  # the audit chain, through the hash-chained append
            await audit.append(
                conn,
                actor="carol",
                role="compliance",
                action="search",
                target=f"q{i}",
                reason="复核",
                at=t + timedelta(seconds=i),
            )


async def snapshot(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with engine.connect() as conn:
        for table in previous_metadata.sorted_tables:
            order = list(table.primary_key.columns)
            rows = (await conn.execute(select(table).order_by(*order))).all()
            out[table.name] = [tuple(r) for r in rows]
    return out


async def test_a_filled_previous_release_database_upgrades_with_nothing_lost(
    engine: AsyncEngine, db: tuple[str, str | None]
) -> None:
    url, schema = db
    await create_previous_release(engine)
    await fill(engine)
    before = await snapshot(engine)
    assert all(before.values()), [name for name, rows in before.items() if not rows]
    assert set(before) == migrations.PREVIOUS_RELEASE_TABLES

    found = await migrations.status(engine)
    assert found.state is SchemaState.PREVIOUS_RELEASE
    with pytest.raises(SchemaNotCurrent, match=r"earlier release.*dialer db upgrade"):
        await open_compliance_engine(url, schema=schema)

    was, now = await migrations.upgrade(engine)
    assert (was.state, now.state, now.current) == (
        SchemaState.PREVIOUS_RELEASE,
        SchemaState.CURRENT,
        migrations.head(),
    )
    assert await snapshot(engine) == before
    assert await audit.verify(engine) == []

    # today's code on the upgraded data
    store = await IdentityStore.open(url, schema=schema)
    try:
        assert await store.authenticate(OLD_TOKEN) == Principal("ann", Role.AGENT, "701")
        await store.set_password(Principal("root", Role.ADMIN), "ann", "a long password")
        assert isinstance(await store.sign_in("ann", "a long password"), SignedIn)
    finally:
        await store.aclose()
    compliance = await open_compliance_engine(url, schema=schema)
    await compliance.dispose()
    # the head row still follows the log: the guards of revision 0003 hold
    async with engine.connect() as conn:
        head = (await conn.execute(select(audit_head.c.seq))).scalar_one()
    assert head == 3


async def test_an_earlier_database_without_the_attempt_index_gets_it(
    engine: AsyncEngine,
) -> None:
    """Databases made before the decisions' attempt-id index existed lack it (the old code
    added it at each start); revision 0001 adds it too."""
    await create_previous_release(engine)
    async with engine.begin() as conn:
        await conn.execute(text("DROP INDEX ix_compliance_decisions_attempt"))
    await migrations.upgrade(engine)

    def index_names(conn: Connection) -> set[str]:
        return {str(ix["name"]) for ix in inspect(conn).get_indexes("compliance_decisions")}

    async with engine.connect() as conn:
        assert "ix_compliance_decisions_attempt" in await conn.run_sync(index_names)


async def test_an_upgrade_twice_changes_nothing(engine: AsyncEngine) -> None:
    await create_previous_release(engine)
    await fill(engine)
    await migrations.upgrade(engine)
    before = await snapshot(engine)
    was, now = await migrations.upgrade(engine)
    assert was.state is now.state is SchemaState.CURRENT
    assert await snapshot(engine) == before


def _shape(conn: Connection) -> dict[str, Any]:
    """Everything a schema is made of, as reflected from the database."""
    found = inspect(conn)
    shape: dict[str, Any] = {}
    for name in sorted(set(found.get_table_names()) - {"alembic_version"}):
        shape[name] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(name)
            ],
            "pk": found.get_pk_constraint(name)["constrained_columns"],
            "fks": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"])
                for f in found.get_foreign_keys(name)
            ),
            "indexes": sorted(
                (ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
                for ix in found.get_indexes(name)
            ),
            "uniques": sorted(tuple(u["column_names"]) for u in found.get_unique_constraints(name)),
        }
    if conn.dialect.name == "sqlite":
        rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
    else:
        rows = conn.execute(
            text(
                "SELECT tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c "
                "ON c.oid = t.tgrelid WHERE NOT t.tgisinternal "
                "AND c.relnamespace = current_schema()::regnamespace"
            )
        )
    here = "\x00"  # SQLite: no schema to strip
    if conn.dialect.name == "postgresql":
        here = str(conn.execute(text("SELECT current_schema()")).scalar()) + "."
    shape["triggers"] = sorted((r[0], re.sub(r"\s+", " ", r[1]).replace(here, "")) for r in rows)
    return shape


async def test_revision_0001_is_the_previous_release(db: tuple[str, str | None]) -> None:
    url, schema = db
    if schema is None:
        old_url, new_url = url, url.replace(".sqlite3", "-new.sqlite3")
        old_schema = new_schema = None
    else:
        # a second schema beside the fixture's, dropped at the end
        old_url = new_url = url
        old_schema, new_schema = schema, schema + "_n"
        admin = make_engine(url)
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{new_schema}"'))
        await admin.dispose()
    old = make_engine(old_url, schema=old_schema)
    new = make_engine(new_url, schema=new_schema)
    try:
        await create_previous_release(old)
        await migrations.upgrade(new, "0001")
        async with old.connect() as a, new.connect() as b:
            assert await a.run_sync(_shape) == await b.run_sync(_shape)
    finally:
        await old.dispose()
        await new.dispose()
        if new_schema is not None:
            admin = make_engine(url)
            async with admin.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{new_schema}" CASCADE'))
            await admin.dispose()


def code_metadata() -> MetaData:
    from agi_scripts import desk_store
    from casework import schema as casework_schema
    from compliance import tables
    from dialer import attempts as attempt_log
    from dialer import desk_records
    from identity import schema as identity_schema
    from recordings import schema as recordings_schema

    joined = MetaData()
    for md in (
        tables.metadata,
        recordings_schema.metadata,
        identity_schema.metadata,
        desk_store.metadata,
        attempt_log.metadata,
        casework_schema.metadata,
        desk_records.metadata,
    ):
        for table in md.tables.values():
            table.to_metadata(joined)
    return joined


async def test_the_head_is_the_code_s_schema(engine: AsyncEngine) -> None:
    """A table or column changed in code without a revision fails here: add one
    (README, "How to add a migration")."""
    await migrations.upgrade(engine)

    def differences(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, code_metadata()))

    async with engine.connect() as conn:
        assert await conn.run_sync(differences) == []


async def cli(*argv: str) -> int:
    """``dialer ...`` as a person runs it (its own event loop, so in a thread here)."""
    return await asyncio.to_thread(main, list(argv))


async def test_an_older_database_is_refused_until_upgraded(
    db: tuple[str, str | None],
    engine: AsyncEngine,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, schema = db
    await migrations.upgrade(engine, "0001")
    with pytest.raises(SchemaNotCurrent, match=r"revision 0001.*run `dialer db upgrade`"):
        await open_compliance_engine(url, schema=schema)
    where = ["--db", url] if schema is None else ["--db", url, "--schema", schema]
    if schema is None:  # the compliance commands take no PostgreSQL schema
        # a command on the old database: exit 3 and the command to run
        code = await cli("leads", "list", "--campaign", "x", *where)
        err = capsys.readouterr().err
        assert code == 3 and "dialer db upgrade" in err, err
    assert await cli("db", "current", *where) == 1
    assert "revision 0001 (behind)" in capsys.readouterr().out
    assert await cli("db", "upgrade", *where) == 0
    assert f"from 0001 to revision {migrations.head()}" in capsys.readouterr().out
    assert await cli("db", "current", *where) == 0
    if schema is None:
        assert await cli("leads", "list", "--campaign", "x", *where) == 2  # unknown campaign
    await (await open_compliance_engine(url, schema=schema)).dispose()


async def test_a_new_database_is_brought_to_the_head_by_the_first_process(
    db: tuple[str, str | None],
) -> None:
    url, schema = db
    # several stores opening the same new database at once: one creates it, none fails
    engines = [make_engine(url, schema=schema) for _ in range(3)]
    try:
        await asyncio.gather(*(migrations.ensure_current(e) for e in engines))
        assert (await migrations.status(engines[0])).state is SchemaState.CURRENT
    finally:
        for e in engines:
            await e.dispose()
    compliance = await open_compliance_engine(url, schema=schema)
    await compliance.dispose()


async def test_an_unknown_revision_is_refused(engine: AsyncEngine) -> None:
    await migrations.upgrade(engine)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaNotCurrent, match=r"9999, which this code does not know"):
        await migrations.ensure_current(engine)


def test_revisions_are_numbered_in_one_line() -> None:
    """``NNNN_<what>.py`` with revision ``NNNN``, each after the one before: the highest
    number is the head."""
    versions = Path(migrations.__file__).parent / "versions"
    files = sorted(p for p in versions.glob("[0-9][0-9][0-9][0-9]_*.py"))
    numbers = [p.name[:4] for p in files]
    assert numbers == [f"{i:04d}" for i in range(1, len(files) + 1)]
    chain = {s.revision: s.down_revision for s in migrations.scripts().walk_revisions()}
    assert chain == {n: (f"{int(n) - 1:04d}" if n != "0001" else None) for n in numbers}
    assert migrations.head() == numbers[-1]
