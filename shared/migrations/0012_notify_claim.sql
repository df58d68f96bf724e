-- 0012: notify claims a delivery before sending it. The event is delivered at least once,
-- sometimes to two instances at the same moment: the instance that moves a row from
-- pending (or failed) to 'sending' in its transaction is the only one that sends it. A
-- row left 'sending' by an instance that died is claimed again once it is older than the
-- send timeout (the redelivery of the unacknowledged event does that).

ALTER TABLE notify_deliveries DROP CONSTRAINT notify_deliveries_status_check;
ALTER TABLE notify_deliveries ADD CONSTRAINT notify_deliveries_status_check
    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'dead', 'skipped'));
