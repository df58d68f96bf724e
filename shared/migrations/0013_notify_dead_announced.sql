-- 0013: notify (review fixes).
--
-- * announced_at: when the notify.dead of a dead delivery was published. A dead row not yet
--   announced (the publish failed, the instance died) is announced on the event's
--   redelivery, so no dead delivery goes unreported.
-- * The one-tenant-per-signal trigger takes a transaction-level advisory lock on the signal
--   before it looks: two concurrent transactions recording the same signal for two tenants
--   are serialised, and the second sees the first's committed row and is refused.

ALTER TABLE notify_deliveries ADD COLUMN announced_at timestamptz;
GRANT UPDATE (announced_at) ON notify_deliveries TO qs_app;

CREATE OR REPLACE FUNCTION notify_one_tenant_per_signal() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NEW.kind LIKE 'signal.%' THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('notify:' || NEW.dedup_key, 0));
        IF EXISTS (
                SELECT 1 FROM notify_deliveries
                WHERE dedup_key = NEW.dedup_key
                  AND tenant_key <> coalesce(NEW.tenant_id::text, '')) THEN
            RAISE EXCEPTION 'signal % is already recorded for another tenant: refusing '
                            'delivery to tenant %', NEW.subject, NEW.tenant_id
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    END IF;
    RETURN NEW;
END $$;
