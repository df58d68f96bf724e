-- 0008: decide (issue #6).
--
-- decide_market_runs   one row per snapshot decide processed: the layer-1 readings, the
--                      regime and consensus summary, and the learning state it used (a
--                      redelivery decides the remaining tenants with the same state); its
--                      readings are scored against the realised move later (scored_at).
--                      Market data, not tenant data: no tenant column, like chain_snapshots.
-- decide_signal_state  the market-wide learning state per underlying: Bayesian signal
--                      weights and circuit breakers (JSON of shared.domain.decide.engine).
-- decide_tenant_state  each tenant's Thompson bandit (its own paper P&L teaches it).
-- decisions            each tenant's decision per snapshot: a proposal (the outbox of
--                      decision.proposed, published_at) or a no-trade with its reason, and
--                      the explanation either way. One per (tenant, snapshot): the snapshot
--                      event's idempotency key.

CREATE TABLE decide_market_runs (
    snapshot_id  uuid PRIMARY KEY REFERENCES chain_snapshots (snapshot_id),
    event_id     text NOT NULL,
    symbol       text NOT NULL,
    asof         timestamptz NOT NULL,
    spot         double precision NOT NULL CHECK (spot > 0),
    atm_iv       double precision,
    regime       text,
    readings     jsonb NOT NULL,
    summary      jsonb NOT NULL,
    state_used   jsonb NOT NULL,
    scored_at    timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX decide_market_runs_unscored ON decide_market_runs (symbol, asof)
    WHERE scored_at IS NULL;

CREATE TABLE decide_signal_state (
    symbol      text PRIMARY KEY,
    state       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE decide_tenant_state (
    tenant_id   uuid PRIMARY KEY REFERENCES tenants (tenant_id),
    bandit      jsonb NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE decisions (
    decision_id        uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (tenant_id),
    snapshot_id        uuid NOT NULL REFERENCES chain_snapshots (snapshot_id),
    event_id           text NOT NULL,
    symbol             text NOT NULL,
    regime             text,
    outcome            text NOT NULL CHECK (outcome IN ('proposed', 'no_trade')),
    structure          text,
    lots               integer CHECK (lots IS NULL OR lots >= 0),
    proposal_id        uuid UNIQUE,
    proposal           jsonb,
    reason_code        text,
    reason             text,
    explanation        jsonb NOT NULL,
    decided_at         timestamptz NOT NULL,
    published_at       timestamptz,
    bandit_credited_at timestamptz,
    UNIQUE (tenant_id, snapshot_id),
    CHECK ((outcome = 'proposed') = (proposal IS NOT NULL AND proposal_id IS NOT NULL)),
    CHECK (outcome = 'proposed' OR reason_code IS NOT NULL)
);
CREATE INDEX decisions_tenant_time ON decisions (tenant_id, symbol, decided_at DESC);
CREATE INDEX decisions_unpublished ON decisions (tenant_id)
    WHERE published_at IS NULL AND outcome = 'proposed';

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['decide_tenant_state', 'decisions'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I USING (tenant_id = app_current_tenant()) '
                       'WITH CHECK (tenant_id = app_current_tenant())', t || '_isolation', t);
    END LOOP;
END $$;

GRANT SELECT, INSERT ON decide_market_runs, decide_signal_state, decide_tenant_state,
    decisions TO qs_app;
GRANT UPDATE (scored_at) ON decide_market_runs TO qs_app;
GRANT UPDATE (state, updated_at) ON decide_signal_state TO qs_app;
GRANT UPDATE (bandit, updated_at) ON decide_tenant_state TO qs_app;
-- A decision is immutable; only its publication and its credit to the bandit are recorded.
GRANT UPDATE (published_at, bandit_credited_at) ON decisions TO qs_app;
