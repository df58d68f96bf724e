-- 0009: decide's outbox is marked in bulk.
--
-- After a snapshot decide publishes every tenant's proposal at once and marks them
-- published with one call instead of one tenant transaction each (1,000 tenants: one
-- statement, not 1,000 transactions). The function can do nothing but stamp published_at
-- on the decisions named, once; it returns how many it stamped. The owner's policy lets
-- it (a SECURITY DEFINER function runs as the owner, and the table's RLS is FORCEd).

DO $$
BEGIN
    EXECUTE format('CREATE POLICY decisions_owner ON decisions TO %I USING (true) '
                   'WITH CHECK (true)', current_user);
END $$;

CREATE FUNCTION decisions_mark_published(p_decision_ids uuid[]) RETURNS integer
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH stamped AS (
        UPDATE decisions SET published_at = now()
        WHERE decision_id = ANY(p_decision_ids) AND published_at IS NULL
          AND outcome = 'proposed'
        RETURNING 1)
    SELECT count(*)::integer FROM stamped $$;

REVOKE ALL ON FUNCTION decisions_mark_published(uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION decisions_mark_published(uuid[]) TO qs_app;
