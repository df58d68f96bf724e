"""The session layer on the real database: prepared statements reused per connection and
re-prepared when the table changed under them; transactions opened in one round trip;
decide's bulk outbox stamp, which can do nothing else."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from pg8000.exceptions import DatabaseError

from shared.adapters.db import Database, DirectConnector, sqlstate

pytestmark = pytest.mark.integration


def test_a_statement_is_prepared_once_per_connection(pg):
    db = Database(DirectConnector(pg.app), max_idle=1)
    sql = "SELECT count(*) FROM pg_prepared_statements"
    with db.system() as s:
        s.execute("SELECT :a::int + 1 AS x", a=1)
        first = s.execute(sql).scalar()
        for i in range(5):
            assert s.execute("SELECT :a::int + 1 AS x", a=i).scalar() == i + 1
        assert s.execute(sql).scalar() == first  # reused, not prepared again
    with db.tenant(uuid.uuid4()) as s:  # the pooled connection keeps them
        assert s.execute(sql).scalar() == first
    db.close()


def test_a_plan_the_table_changed_under_is_prepared_again(pg, owner_db):
    db = Database(DirectConnector(pg.app), max_idle=1)
    table = f"plan_{uuid.uuid4().hex[:8]}"
    with owner_db.system() as s:
        s.execute(f"CREATE TABLE {table} (a int)")
        s.execute(f"INSERT INTO {table} VALUES (1)")
        s.execute(f"GRANT SELECT ON {table} TO qs_app")
    try:
        with db.system() as s:
            assert s.execute(f"SELECT * FROM {table}").rows == ((1,),)
        with owner_db.system() as s:
            s.execute(f"ALTER TABLE {table} ADD COLUMN b int DEFAULT 7")
        from shared.errors import DatabaseUnavailable

        with pytest.raises(DatabaseUnavailable) as err, db.system() as s:
            s.execute(f"SELECT * FROM {table}")  # transient: the caller retries
        assert sqlstate(err.value.__cause__) == "0A000"  # cached plan must not change type
        with db.system() as s:  # dropped from the cache: prepared afresh
            assert s.execute(f"SELECT * FROM {table}").rows == ((1, 7),)
    finally:
        db.close()
        with owner_db.system() as s:
            s.execute(f"DROP TABLE {table}")


def test_an_unknown_isolation_level_is_refused(app_db):
    with pytest.raises(ValueError, match="isolation"), \
            app_db.system(isolation="SERIALIZABLE; DROP TABLE tenants"):
        pass


def test_the_outbox_stamp_only_stamps_unpublished_proposals(pg, app_db, make_tenant):
    from shared.adapters.decide_state import mark_published
    from tests.functions.risk_support import IST, store_chain

    tenant = make_tenant("outbox")
    now = datetime.now(UTC)
    ids = {}
    for day, kind in ((4, "proposed"), (7, "published"), (8, "no_trade")):
        snapshot_id, _ = store_chain(pg, f"0{day}-Jul-2025 10:00:00",
                                     datetime(2025, 7, day, 10, 0, tzinfo=IST))
        ids[kind] = uuid.uuid4()
        proposed = kind != "no_trade"
        with app_db.tenant(tenant) as s:
            s.execute(
                "INSERT INTO decisions (decision_id, tenant_id, snapshot_id, event_id, symbol, "
                "outcome, proposal_id, proposal, reason_code, explanation, decided_at, "
                "published_at) VALUES (:d, :t, :sid, :e, 'NIFTY', :o, :p, CAST(:j AS jsonb), "
                ":rc, '{}'::jsonb, :at, :pub)",
                d=ids[kind], t=tenant, sid=snapshot_id, e=kind,
                o="proposed" if proposed else "no_trade",
                p=uuid.uuid4() if proposed else None, j=json.dumps({}) if proposed else None,
                rc=None if proposed else "no_view", at=now,
                pub=now if kind == "published" else None)
    with app_db.system() as s:
        assert mark_published(s, ids.values()) == 1  # only the unpublished proposal
        assert mark_published(s, ids.values()) == 0  # once
    with app_db.tenant(tenant) as s:
        stamped = dict(s.execute("SELECT event_id, published_at IS NOT NULL FROM decisions "
                                 "WHERE tenant_id = :t", t=tenant).rows)
        assert stamped == {"proposed": True, "published": True, "no_trade": False}
    with pytest.raises(DatabaseError) as err, app_db.tenant(tenant) as s:
        s.execute("UPDATE decisions SET outcome = 'no_trade' WHERE event_id = 'proposed'")
    assert sqlstate(err.value) == "42501"  # the app may stamp, not rewrite
