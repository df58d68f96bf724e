-- 0011: notify (issue #8): the delivery ledger.
--
-- One row per (what, tenant, channel): ``dedup_key`` is the event kind and its subject
-- (the verdict of a signal, the switch change, the model version), so a redelivered or
-- republished event sends nothing twice. A row moves pending → sent, or → failed (retried
-- with the event, with backoff) → dead after the last attempt (``notify.dead`` to the
-- operator), or → skipped (quiet hours, rate limit, no channel configured) with the reason.
-- Operator rows (``notify.dead``) have no tenant.
--
-- Cross-tenant impossibility: a trigger refuses a row for a signal that is already recorded
-- for another tenant (it runs as the owner, so it sees every tenant's rows).

CREATE TABLE notify_deliveries (
    delivery_id      uuid PRIMARY KEY,
    dedup_key        text NOT NULL,
    event_id         text NOT NULL,
    kind             text NOT NULL,
    subject          text NOT NULL,
    tenant_id        uuid REFERENCES tenants (tenant_id),
    channel          text NOT NULL CHECK (channel IN ('telegram', 'email', 'webhook')),
    target           text NOT NULL,
    status           text NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'dead',
                                                     'skipped')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error       text,
    provider_id      text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    sent_at          timestamptz,
    tenant_key       text GENERATED ALWAYS AS (coalesce(tenant_id::text, '')) STORED,
    UNIQUE (dedup_key, tenant_key, channel),
    CHECK (tenant_id IS NOT NULL OR kind = 'notify.dead')
);
CREATE INDEX notify_deliveries_tenant_time ON notify_deliveries (tenant_id, sent_at);

ALTER TABLE notify_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE notify_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY notify_deliveries_isolation ON notify_deliveries
    USING ((tenant_id IS NULL AND app_current_tenant() IS NULL)
           OR tenant_id = app_current_tenant())
    WITH CHECK ((tenant_id IS NULL AND app_current_tenant() IS NULL)
                OR tenant_id = app_current_tenant());
DO $$
BEGIN
    EXECUTE format('CREATE POLICY notify_deliveries_owner ON notify_deliveries TO %I '
                   'USING (true) WITH CHECK (true)', current_user);
END $$;

CREATE FUNCTION notify_one_tenant_per_signal() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.kind LIKE 'signal.%' AND EXISTS (
            SELECT 1 FROM notify_deliveries
            WHERE dedup_key = NEW.dedup_key AND tenant_key <> coalesce(NEW.tenant_id::text, ''))
    THEN
        RAISE EXCEPTION 'signal % is already recorded for another tenant: refusing delivery '
                        'to tenant %', NEW.subject, NEW.tenant_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER notify_one_tenant_per_signal BEFORE INSERT OR UPDATE ON notify_deliveries
    FOR EACH ROW EXECUTE FUNCTION notify_one_tenant_per_signal();
REVOKE ALL ON FUNCTION notify_one_tenant_per_signal() FROM PUBLIC;

GRANT SELECT, INSERT ON notify_deliveries TO qs_app;
GRANT UPDATE (status, attempts, last_error, provider_id, updated_at, sent_at)
    ON notify_deliveries TO qs_app;
