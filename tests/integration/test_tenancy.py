"""Row-level security, the audit log, the dry-run lock and migrations, on a real PostgreSQL."""

from __future__ import annotations

import shutil
import uuid

import pytest
from pg8000.exceptions import DatabaseError

from shared.adapters.db import DirectConnector, sqlstate
from shared.adapters.migrations import MigrationError, apply_migrations, load_migrations
from shared.errors import TenantRequired

pytestmark = pytest.mark.integration


def test_app_role_is_not_privileged(app_db):
    with app_db.system() as s:
        row = s.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user"
        ).rows[0]
    assert row == (False, False, False, False)


def test_tenant_a_cannot_read_tenant_b(app_db, make_tenant):
    a, b = make_tenant("A"), make_tenant("B")
    with app_db.tenant(a) as s:
        s.audit(actor="test", action="a-wrote")
    with app_db.tenant(b) as s:
        s.audit(actor="test", action="b-wrote")
        assert [r[0] for r in s.execute("SELECT action FROM audit_log").rows] == ["b-wrote"]
        assert s.execute("SELECT count(*) FROM audit_log WHERE tenant_id = :a", a=a).scalar() == 0
        assert [r[0] for r in s.execute("SELECT tenant_id FROM tenants").rows] == [b]


def test_tenant_a_cannot_write_tenant_b(app_db, make_tenant):
    a, b = make_tenant("A"), make_tenant("B")
    with pytest.raises(DatabaseError) as err, app_db.tenant(a) as s:
        s.execute("INSERT INTO audit_log (tenant_id, actor, action) VALUES (:b, 'x', 'sneak')", b=b)
    assert sqlstate(err.value) == "42501"  # new row violates row-level security policy
    with app_db.tenant(a) as s:
        updated = s.execute("UPDATE tenants SET name = 'pwned' WHERE tenant_id = :b RETURNING 1", b=b)
        assert updated.rows == ()
    with app_db.tenant(b) as s:
        assert s.execute("SELECT name FROM tenants").scalar() == "B"


def test_a_forgotten_tenant_sees_zero_rows(app_db, make_tenant):
    a = make_tenant("A")
    with app_db.tenant(a) as s:
        s.audit(actor="test", action="x")
    with app_db.system() as s:
        assert s.execute("SELECT count(*) FROM audit_log").scalar() == 0
        assert s.execute("SELECT count(*) FROM tenants").scalar() == 0
    # SET LOCAL ends with the transaction: the next one on the same pooled connection is clean
    with app_db.tenant(a) as s:
        pass
    with app_db.system() as s:
        assert s.execute("SELECT app_current_tenant()").scalar() is None


def test_sessions_refuse_to_run_without_a_tenant(app_db):
    for bad in (None, "", "not-a-uuid"):
        with pytest.raises(TenantRequired):
            app_db.tenant(bad)
    with pytest.raises(TenantRequired), app_db.system() as s:
        s.audit(actor="x", action="y")


def test_fan_out_sees_ids_only(app_db, make_tenant):
    a = make_tenant("A")
    assert a in app_db.active_tenants()


def test_audit_rows_cannot_be_changed_by_the_app_or_the_owner(pg, app_db, owner_db, make_tenant):
    from shared.adapters.db import Database

    superuser = Database(DirectConnector(pg.admin.with_database("quantsentinel")))
    a = make_tenant("A")
    with app_db.tenant(a) as s:
        audit_id = s.audit(actor="risk_check", action="blocked", details={"cost_ratio": 0.52})
    for sql in ("UPDATE audit_log SET action = 'approved' WHERE audit_id = :i",
                "DELETE FROM audit_log WHERE audit_id = :i"):
        with pytest.raises(DatabaseError) as err, app_db.tenant(a) as s:
            s.execute(sql, i=audit_id)
        assert sqlstate(err.value) == "42501"  # the app role has no UPDATE/DELETE grant
        with owner_db.tenant(a) as s:  # FORCEd RLS has no UPDATE/DELETE policy: nothing matches
            assert s.execute(sql + " RETURNING 1", i=audit_id).rows == ()
        with pytest.raises(DatabaseError, match="append-only"), superuser.system() as s:
            s.execute(sql, i=audit_id)  # even past RLS, the trigger refuses
    with pytest.raises(DatabaseError, match="append-only"), owner_db.system() as s:
        s.execute("TRUNCATE audit_log")
    superuser.close()
    with app_db.tenant(a) as s:
        row = s.execute("SELECT action, details FROM audit_log WHERE audit_id = :i", i=audit_id).rows[0]
    assert row == ("blocked", {"cost_ratio": 0.52})


def test_dry_run_lock_holds_through_direct_updates(app_db, owner_db, make_tenant):
    a = make_tenant("A")
    with app_db.tenant(a) as s:
        created, until, mode = s.execute("SELECT created_at, dry_run_until, trading_mode FROM tenants").rows[0]
    assert mode == "paper"
    assert (until - created).days == 14
    with pytest.raises(DatabaseError, match="paper-only until"), app_db.tenant(a) as s:
        s.execute("UPDATE tenants SET trading_mode = 'live'")
    with pytest.raises(DatabaseError) as err, app_db.tenant(a) as s:
        s.execute("UPDATE tenants SET dry_run_until = now() - interval '1 day'")
    assert sqlstate(err.value) == "42501"  # no column grant
    # even the owner cannot shorten the lock or backdate the tenant
    for sql in ("UPDATE tenants SET dry_run_until = now() - interval '1 day' WHERE tenant_id = :a",
                "UPDATE tenants SET created_at = now() - interval '30 days' WHERE tenant_id = :a"):
        with pytest.raises(DatabaseError, match="immutable"), owner_db.system() as s:
            s.execute(sql, a=a)
    with pytest.raises(DatabaseError, match="paper mode"), owner_db.system() as s:
        s.execute("INSERT INTO tenants (tenant_id, name, trading_mode, dry_run_until) "
                  "VALUES (:t, 'x', 'live', now())", t=uuid.uuid4())
    # provisioning ignores a caller's clock: dry_run_until is the database's now() + 14 days
    b = uuid.uuid4()
    with owner_db.system() as s:
        s.execute("INSERT INTO tenants (tenant_id, name, created_at, dry_run_until) "
                  "VALUES (:t, 'x', now() - interval '90 days', now() - interval '60 days')", t=b)
        exact = s.execute("SELECT dry_run_until - now() = interval '14 days', created_at = now() "
                          "FROM tenants WHERE tenant_id = :t", t=b).rows[0]
    assert exact == (True, True)  # now() is the transaction's time, so both are exact


def test_event_claims_are_idempotent_and_transactional(app_db):
    event_id = f"evt-{uuid.uuid4()}"
    with app_db.system() as s:
        assert s.claim_event("probe", event_id) is True
        assert s.claim_event("probe", event_id) is False
    with pytest.raises(RuntimeError), app_db.system() as s:
        other = f"evt-{uuid.uuid4()}"
        assert s.claim_event("probe", other) is True
        raise RuntimeError("the write failed")
    with app_db.system() as s:  # the claim rolled back with the failed write
        assert s.claim_event("probe", other) is True


def test_per_tenant_claims_are_scoped(app_db, make_tenant):
    a, b = make_tenant("A"), make_tenant("B")
    for tenant in (a, b):
        with app_db.tenant(tenant) as s:
            assert s.claim_event("decide", "snapshot-1", per_tenant=True) is True
    with app_db.tenant(a) as s:
        assert s.claim_event("decide", "snapshot-1", per_tenant=True) is False
    with pytest.raises(TenantRequired), app_db.system() as s:
        s.claim_event("decide", "snapshot-1", per_tenant=True)


def test_migrations_are_idempotent_and_detect_edits(pg, tmp_path):
    owner = DirectConnector(pg.owner)
    assert apply_migrations(owner) == []  # already applied by the fixture
    copy = tmp_path / "migrations"
    shutil.copytree(load_migrations.__globals__["resources"].files("shared") / "migrations", copy)
    first = sorted(copy.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        apply_migrations(owner, copy)


def test_a_session_level_tenant_setting_cannot_leak_into_later_sessions(app_db, make_tenant):
    a = make_tenant("A")
    with app_db.tenant(a) as s:
        s.audit(actor="test", action="secret")
        # some code path sets the tenant for the whole connection, not just the transaction
        s.execute("SELECT set_config('app.tenant_id', :t, false)", t=str(a))
    for _ in range(3):  # whichever pooled connection comes back
        with app_db.system() as s:
            assert s.execute("SELECT count(*) FROM audit_log").scalar() == 0
            assert s.execute("SELECT app_current_tenant()").scalar() is None


def test_a_global_claim_cannot_shadow_a_tenant_claim(app_db, make_tenant):
    a, b = make_tenant("A"), make_tenant("B")
    with pytest.raises(DatabaseError) as err, app_db.tenant(a) as s:
        s.execute("INSERT INTO processed_events (consumer, event_id, scope, tenant_id) "
                  "VALUES ('decide', 'snap-9', :scope, NULL)", scope=str(b))
    assert sqlstate(err.value) == "23514"  # check_violation
    with app_db.tenant(b) as s:
        assert s.claim_event("decide", "snap-9", per_tenant=True) is True


def test_audit_entries_cannot_be_backdated(app_db, make_tenant):
    a = make_tenant("A")
    with pytest.raises(DatabaseError) as err, app_db.tenant(a) as s:
        s.execute("INSERT INTO audit_log (tenant_id, actor, action, occurred_at) "
                  "VALUES (:a, 'x', 'y', now() - interval '1 year')", a=a)
    assert sqlstate(err.value) == "42501"


def test_the_app_role_cannot_provision_tenants_or_read_rejections(app_db):
    with pytest.raises(DatabaseError) as err, app_db.system() as s:
        s.execute("SELECT provision_tenant(:t, 'x')", t=uuid.uuid4())
    assert sqlstate(err.value) == "42501"
    with pytest.raises(DatabaseError) as err, app_db.system() as s:
        s.execute("INSERT INTO tenants (tenant_id, name, dry_run_until) VALUES (:t, 'x', now())",
                  t=uuid.uuid4())
    assert sqlstate(err.value) == "42501"
    with pytest.raises(DatabaseError) as err, app_db.system() as s:
        s.execute("SELECT reason, payload FROM rejections")
    assert sqlstate(err.value) == "42501"


def test_triggers_ignore_a_hostile_search_path(pg, app_db, make_tenant):
    """The lock's functions pin search_path, so shadowing now() in a schema cannot help."""
    with app_db.system() as s:
        creatable = s.execute("SELECT has_schema_privilege('public', 'CREATE')").scalar()
        pinned = s.execute(
            "SELECT proname, proconfig FROM pg_proc WHERE proname IN "
            "('tenants_dry_run_lock', 'forbid_changes') ORDER BY proname").rows
    assert creatable is False
    assert [cfg for _, cfg in pinned] == [["search_path=pg_catalog, pg_temp"]] * 2


def test_a_dead_connection_is_discarded_and_reported_as_transient(pg):
    from shared.adapters.db import Database
    from shared.errors import DatabaseUnavailable

    db = Database(DirectConnector(pg.app))
    with db.system() as s:
        pid = s.execute("SELECT pg_backend_pid()").scalar()
    superuser = Database(DirectConnector(pg.admin.with_database("quantsentinel")))
    with superuser.system() as s:
        s.execute("SELECT pg_terminate_backend(:p)", p=pid)
    superuser.close()
    with pytest.raises(DatabaseUnavailable), db.system() as s:  # the pooled one is dead
        s.execute("SELECT 1")
    with db.system() as s:  # and it was not returned to the pool
        assert s.execute("SELECT pg_backend_pid()").scalar() != pid
    db.close()
