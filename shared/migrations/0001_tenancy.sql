-- 0001: multi-tenancy, the dry-run lock, the append-only audit log, idempotency.
--
-- Roles (created before migrations run: by local/postgres.py locally, by terraform in GCP):
--   qs_owner  owns every object and runs DDL (migrations);
--   qs_app    the functions' role: DML only, NOSUPERUSER NOBYPASSRLS, never owns a table.
--
-- Tenant isolation: every tenant-scoped table has ROW LEVEL SECURITY keyed on
-- app_current_tenant(), which reads current_setting('app.tenant_id') as set by
-- `SELECT set_config('app.tenant_id', $1, true)` (= SET LOCAL) at the start of each
-- transaction. With no tenant set it is NULL, so every policy matches zero rows.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'qs_app') THEN
        RAISE EXCEPTION 'role qs_app must exist before migrations run (see README: database roles)';
    END IF;
END $$;

-- Nobody but the owner creates objects in public: a role that could would be able to
-- shadow functions (now(), current_setting) that the policies and triggers call.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

CREATE FUNCTION app_current_tenant() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(pg_catalog.current_setting('app.tenant_id', true), '')::uuid $$;

COMMENT ON FUNCTION app_current_tenant() IS
    'The tenant of the current transaction (SET LOCAL app.tenant_id), NULL when none is set.';

-- Tenants -------------------------------------------------------------------------------

CREATE TABLE tenants (
    tenant_id      uuid PRIMARY KEY,
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- Paper trading by default: the database sets this on insert and never lets it move.
    dry_run_until  timestamptz NOT NULL,
    trading_mode   text NOT NULL DEFAULT 'paper' CHECK (trading_mode IN ('paper', 'live')),
    active         boolean NOT NULL DEFAULT true,
    plan           text NOT NULL DEFAULT 'standard',
    settings       jsonb NOT NULL DEFAULT '{}'::jsonb
);

COMMENT ON COLUMN tenants.dry_run_until IS
    'created_at + 14 days, set by trigger; trading_mode cannot be live before it.';

CREATE FUNCTION tenants_dry_run_lock() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- The clock is the database's, not the caller's: nothing a client sends can shorten it.
        NEW.created_at := now();
        NEW.dry_run_until := now() + interval '14 days';
        IF NEW.trading_mode <> 'paper' THEN
            RAISE EXCEPTION 'dry-run lock: a new tenant starts in paper mode'
                USING ERRCODE = 'check_violation';
        END IF;
    ELSE
        IF NEW.created_at IS DISTINCT FROM OLD.created_at
           OR NEW.dry_run_until IS DISTINCT FROM OLD.dry_run_until THEN
            RAISE EXCEPTION 'dry-run lock: created_at and dry_run_until are immutable'
                USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.trading_mode = 'live' AND now() < OLD.dry_run_until THEN
            RAISE EXCEPTION 'dry-run lock: tenant % is paper-only until %', OLD.tenant_id, OLD.dry_run_until
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER tenants_dry_run_lock
    BEFORE INSERT OR UPDATE ON tenants
    FOR EACH ROW EXECUTE FUNCTION tenants_dry_run_lock();

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
-- Not FORCEd: the owner's SECURITY DEFINER functions below must see every tenant.
CREATE POLICY tenants_isolation ON tenants
    USING (tenant_id = app_current_tenant())
    WITH CHECK (tenant_id = app_current_tenant());

-- Provisioning (operators, via the owner role) and fan-out (the app role) need to see tenants without a tenant context. They go through
-- SECURITY DEFINER functions that return only what they must.
CREATE FUNCTION provision_tenant(p_tenant_id uuid, p_name text, p_plan text DEFAULT 'standard',
                                 p_settings jsonb DEFAULT '{}'::jsonb)
    RETURNS timestamptz
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_until timestamptz;
BEGIN
    INSERT INTO tenants (tenant_id, name, plan, settings, dry_run_until)
    VALUES (p_tenant_id, p_name, p_plan, p_settings, now())
    ON CONFLICT (tenant_id) DO NOTHING;
    SELECT dry_run_until INTO v_until FROM tenants WHERE tenant_id = p_tenant_id;
    RETURN v_until;
END $$;

CREATE FUNCTION active_tenant_ids() RETURNS SETOF uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$ SELECT tenant_id FROM tenants WHERE active ORDER BY tenant_id $$;

REVOKE ALL ON FUNCTION provision_tenant(uuid, text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION active_tenant_ids() FROM PUBLIC;

-- Audit log: append-only --------------------------------------------------------------

CREATE TABLE audit_log (
    audit_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (tenant_id),
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,
    action       text NOT NULL,
    subject      text,
    event_id     text,
    details      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_tenant_time ON audit_log (tenant_id, occurred_at);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_log_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_log_read ON audit_log FOR SELECT USING (tenant_id = app_current_tenant());
CREATE POLICY audit_log_append ON audit_log FOR INSERT WITH CHECK (tenant_id = app_current_tenant());

-- Idempotency: the inbox of processed events ------------------------------------------
-- A consumer claims (consumer, event_id, scope) in the same transaction as its write; a
-- redelivered event finds the claim and changes nothing. scope is '' for market-wide work
-- and the tenant id for per-tenant work (decide handles one snapshot once per tenant).

CREATE TABLE processed_events (
    consumer      text NOT NULL,
    event_id      text NOT NULL,
    scope         text NOT NULL DEFAULT '',
    tenant_id     uuid REFERENCES tenants (tenant_id),
    topic         text,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id, scope),
    CHECK ((tenant_id IS NULL AND scope = '') OR (tenant_id IS NOT NULL AND scope = tenant_id::text))
);

ALTER TABLE processed_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE processed_events FORCE ROW LEVEL SECURITY;
CREATE POLICY processed_events_isolation ON processed_events
    USING (tenant_id IS NULL OR tenant_id = app_current_tenant())
    WITH CHECK (tenant_id IS NULL OR tenant_id = app_current_tenant());

-- Rejections: acked bad input, with the reason (operator table, not tenant-scoped) ------

CREATE TABLE rejections (
    rejection_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consumer      text NOT NULL,
    event_id      text NOT NULL,
    topic         text,
    reason_code   text NOT NULL,
    reason        text NOT NULL,
    attributes    jsonb NOT NULL DEFAULT '{}'::jsonb,
    payload       bytea,
    received_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (consumer, event_id)
);

-- Heartbeats: the local cloud's canary writes here (also usable by a production canary).

CREATE TABLE heartbeats (
    event_id     text PRIMARY KEY,
    probe_id     uuid NOT NULL,
    source       text NOT NULL,
    sent_at      timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);

-- Grants: the app role reads and writes rows, never DDL, never the audit history. ------

GRANT USAGE ON SCHEMA public TO qs_app;
GRANT SELECT ON tenants TO qs_app;
GRANT UPDATE (name, trading_mode, active, plan, settings) ON tenants TO qs_app;
-- occurred_at and audit_id are the database's: the app cannot backdate an entry.
GRANT SELECT, INSERT (tenant_id, actor, action, subject, event_id, details) ON audit_log TO qs_app;
GRANT SELECT, INSERT ON processed_events TO qs_app;
-- Rejections may hold any tenant's raw payloads: the app writes them, only operators read
-- them (the two key columns are readable because ON CONFLICT needs them).
GRANT INSERT, SELECT (consumer, event_id) ON rejections TO qs_app;
GRANT SELECT, INSERT ON heartbeats TO qs_app;
GRANT EXECUTE ON FUNCTION active_tenant_ids() TO qs_app;
GRANT EXECUTE ON FUNCTION app_current_tenant() TO qs_app;
