-- 0003: risk_check state: kill switches (current state and append-only history), the
-- verdict of every proposal, and the paper book the approved signals open.
--
-- Every table is tenant-scoped under FORCEd row-level security keyed on
-- app_current_tenant() (see 0001). Kill-switch rows may be global (tenant_id NULL): every
-- tenant sees and may trip them, none can see another tenant's.

-- Kill switches: the current state, one row per (switch, scope, scope_key[, tenant]) -----
-- scope_key is '' (not NULL) for a switch that applies to its whole scope. The key also
-- carries the tenant (tenant_key, '' for a global row): two tenants' trips of the same
-- switch on the same key (a strategy name) are distinct rows, and neither can see, let
-- alone collide with, the other's.

CREATE TABLE kill_switches (
    switch      text NOT NULL CHECK (length(switch) BETWEEN 1 AND 64),
    scope       text NOT NULL CHECK (length(scope) BETWEEN 1 AND 32),
    scope_key   text NOT NULL DEFAULT '',
    tenant_id   uuid REFERENCES tenants (tenant_id),
    tripped     boolean NOT NULL,
    reason      text NOT NULL,
    actor       text NOT NULL,
    changed_at  timestamptz NOT NULL,
    tenant_key  text GENERATED ALWAYS AS (coalesce(tenant_id::text, '')) STORED,
    PRIMARY KEY (switch, scope, scope_key, tenant_key)
);
CREATE INDEX kill_switches_tripped ON kill_switches (switch) WHERE tripped;

ALTER TABLE kill_switches ENABLE ROW LEVEL SECURITY;
ALTER TABLE kill_switches FORCE ROW LEVEL SECURITY;
CREATE POLICY kill_switches_isolation ON kill_switches
    USING (tenant_id IS NULL OR tenant_id = app_current_tenant())
    WITH CHECK (tenant_id IS NULL OR tenant_id = app_current_tenant());

-- Kill-switch history: append-only ---------------------------------------------------------

CREATE TABLE kill_switch_events (
    event_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    switch       text NOT NULL,
    scope        text NOT NULL,
    scope_key    text NOT NULL DEFAULT '',
    tenant_id    uuid REFERENCES tenants (tenant_id),
    tripped      boolean NOT NULL,
    reason       text NOT NULL,
    actor        text NOT NULL,
    source_event text,                              -- the event that caused it, if any
    occurred_at  timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX kill_switch_events_switch_time ON kill_switch_events (switch, scope, scope_key, occurred_at);

-- One trigger function for every append-only table (it names the table it guards); the
-- audit log moves onto it too, replacing its own copy from 0001.
CREATE FUNCTION forbid_changes() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

DROP TRIGGER audit_log_no_update_delete ON audit_log;
DROP TRIGGER audit_log_no_truncate ON audit_log;
DROP FUNCTION audit_log_is_append_only();

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['audit_log', 'kill_switch_events'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I '
                       'FOR EACH ROW EXECUTE FUNCTION forbid_changes()', t || '_no_update_delete', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION forbid_changes()', t || '_no_truncate', t);
    END LOOP;
END $$;

ALTER TABLE kill_switch_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE kill_switch_events FORCE ROW LEVEL SECURITY;
CREATE POLICY kill_switch_events_isolation ON kill_switch_events
    USING (tenant_id IS NULL OR tenant_id = app_current_tenant())
    WITH CHECK (tenant_id IS NULL OR tenant_id = app_current_tenant());

-- Risk verdicts: one per (tenant, proposal) ---------------------------------------------

CREATE TABLE risk_verdicts (
    verdict_id       uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (tenant_id),
    proposal_id      uuid NOT NULL,
    event_id         text NOT NULL,
    snapshot_id      uuid,
    symbol           text NOT NULL,
    structure        text NOT NULL,
    approved         boolean NOT NULL,
    blocked_by       text,
    reason_code      text NOT NULL,
    reason           text NOT NULL,
    size_multiplier  double precision NOT NULL CHECK (size_multiplier > 0 AND size_multiplier <= 1),
    net_ev           double precision,
    total_costs      double precision,
    dry_run          boolean NOT NULL,
    verdicts         jsonb NOT NULL,
    trips            jsonb NOT NULL DEFAULT '[]'::jsonb,  -- killswitch.tripped messages to publish
    decided_at       timestamptz NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    -- the outbox: set once signal.* (and the trips) are published; a retried or redelivered
    -- event publishes a committed verdict whose publish failed
    published_at     timestamptz,
    UNIQUE (tenant_id, proposal_id),
    CHECK (approved = (blocked_by IS NULL))
);
CREATE INDEX risk_verdicts_tenant_time ON risk_verdicts (tenant_id, decided_at);
CREATE INDEX risk_verdicts_unpublished ON risk_verdicts (tenant_id) WHERE published_at IS NULL;

ALTER TABLE risk_verdicts ENABLE ROW LEVEL SECURITY;
ALTER TABLE risk_verdicts FORCE ROW LEVEL SECURITY;
CREATE POLICY risk_verdicts_isolation ON risk_verdicts
    USING (tenant_id = app_current_tenant())
    WITH CHECK (tenant_id = app_current_tenant());

-- Paper positions: what approved signals opened (paper trading by default) ---------------

CREATE TABLE paper_positions (
    position_id    uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (tenant_id),
    verdict_id     uuid NOT NULL REFERENCES risk_verdicts (verdict_id),
    symbol         text NOT NULL,
    structure      text NOT NULL,
    strategy       text NOT NULL DEFAULT '',
    nearest_expiry date,
    legs           jsonb NOT NULL,                  -- legs at the approved size
    lot_size       integer NOT NULL CHECK (lot_size > 0),
    margin         double precision NOT NULL CHECK (margin >= 0),
    entry_premium  double precision NOT NULL,       -- rupees received (+) or paid (-)
    opened_at      timestamptz NOT NULL,
    status         text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    closed_at      timestamptz,
    realized_pnl   double precision,
    CHECK ((status = 'open') = (closed_at IS NULL))
);
CREATE INDEX paper_positions_open ON paper_positions (tenant_id) WHERE status = 'open';

ALTER TABLE paper_positions ENABLE ROW LEVEL SECURITY;
ALTER TABLE paper_positions FORCE ROW LEVEL SECURITY;
CREATE POLICY paper_positions_isolation ON paper_positions
    USING (tenant_id = app_current_tenant())
    WITH CHECK (tenant_id = app_current_tenant());

-- Grants ----------------------------------------------------------------------------------

GRANT SELECT, INSERT, UPDATE ON kill_switches TO qs_app;
-- event_id and recorded_at are the database's: the app cannot backdate history.
GRANT SELECT, INSERT (switch, scope, scope_key, tenant_id, tripped, reason, actor, source_event, occurred_at)
    ON kill_switch_events TO qs_app;
-- A verdict is immutable; only its publication is recorded afterwards.
GRANT SELECT, INSERT ON risk_verdicts TO qs_app;
GRANT UPDATE (published_at) ON risk_verdicts TO qs_app;
GRANT SELECT, INSERT ON paper_positions TO qs_app;
GRANT UPDATE (status, closed_at, realized_pnl) ON paper_positions TO qs_app;
