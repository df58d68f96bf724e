-- 0002: option-chain snapshots and their analytics (market-wide data: no tenant, no RLS).

-- One row per chain_poll run (a scheduler firing): what happened and why. The stale-data
-- kill switch reads the newest 'published' row per symbol.
CREATE TABLE chain_polls (
    run_id        text PRIMARY KEY,                -- job@schedule_time, or a manual id
    symbol        text NOT NULL,
    source        text NOT NULL,
    status        text NOT NULL CHECK (status IN ('published', 'stale', 'bad_chain', 'rejected', 'failed')),
    reason_code   text,
    reason        text,
    snapshot_id   uuid,
    asof          timestamptz,
    polled_at     timestamptz NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chain_polls_symbol_time ON chain_polls (symbol, polled_at DESC);

CREATE TABLE chain_snapshots (
    snapshot_id     uuid PRIMARY KEY,
    run_id          text NOT NULL REFERENCES chain_polls (run_id) DEFERRABLE INITIALLY DEFERRED,
    symbol          text NOT NULL,
    source          text NOT NULL,
    asof            timestamptz NOT NULL,
    spot            double precision NOT NULL CHECK (spot > 0),
    payload_sha256  text NOT NULL,
    raw_blob        text NOT NULL,
    legs            integer NOT NULL,
    expiries        date[] NOT NULL,
    flags           text[] NOT NULL DEFAULT '{}',
    bad_chain       boolean NOT NULL DEFAULT false,
    skipped         jsonb NOT NULL DEFAULT '{}'::jsonb,   -- expiry -> why it was not analysed
    published_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (symbol, source, asof)                  -- the same payload time twice is stale
);

-- The leg and analytics rows are written in the same transaction as their snapshot row, so
-- they carry no foreign key: a per-row FK trigger costs ~5 us a leg, half the write budget.
CREATE INDEX chain_snapshots_unpublished ON chain_snapshots (symbol, created_at)
    WHERE published_at IS NULL AND NOT bad_chain;
CREATE INDEX chain_snapshots_latest ON chain_snapshots (symbol, source, created_at DESC);

CREATE TABLE chain_legs (
    snapshot_id  uuid NOT NULL,
    expiry       date NOT NULL,
    strike       double precision NOT NULL,
    option_type  char(2) NOT NULL CHECK (option_type IN ('CE', 'PE')),
    last         double precision,
    bid          double precision,
    ask          double precision,
    volume       double precision,
    oi           double precision,
    oi_change    double precision,
    vendor_iv    double precision,
    price        double precision,
    iv           double precision,
    iv_status    smallint NOT NULL,
    delta        double precision,
    gamma        double precision,
    vega         double precision,
    theta        double precision,
    missing      smallint NOT NULL,
    PRIMARY KEY (snapshot_id, expiry, strike, option_type)
);

CREATE TABLE chain_expiry_analytics (
    snapshot_id        uuid NOT NULL,
    expiry             date NOT NULL,
    t                  double precision NOT NULL,
    forward            double precision NOT NULL,
    forward_method     text NOT NULL,
    atm_iv             double precision,
    pcr_oi             double precision,
    pcr_volume         double precision,
    max_pain           double precision,
    gex_total          double precision,
    gamma_flip         double precision,
    density_mean       double precision,
    density_variance   double precision,
    density_skew       double precision,
    density_kurtosis   double precision,
    crash_probability  double precision,
    arbitrage_bad      boolean NOT NULL,
    details            jsonb NOT NULL,             -- smile, by-strike OI/flow/GEX, reasons
    PRIMARY KEY (snapshot_id, expiry)
);

GRANT SELECT, INSERT ON chain_polls, chain_snapshots, chain_legs, chain_expiry_analytics TO qs_app;
GRANT UPDATE (published_at) ON chain_snapshots TO qs_app;
-- a 'failed' poll (provider down, to be retried) is replaced by the retry's outcome
GRANT UPDATE (status, reason_code, reason, snapshot_id, asof, polled_at) ON chain_polls TO qs_app;
