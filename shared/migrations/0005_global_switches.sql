-- 0005: global kill-switch rows (tenant_id NULL: every tenant) are readable by every
-- tenant but no longer writable through a tenant's session. Before, the policy's
-- `tenant_id IS NULL OR ...` applied to writes too, so code holding any tenant's session
-- could reset the master kill. Now:
--   * tenant sessions read global rows and write only their own tenant's rows;
--   * global rows change only through change_global_switch(), which lets a tenant session
--     (risk_check deciding for a tenant) make *automatic* changes to the data-driven global
--     switches only, and a session without a tenant (a platform operator's call, after the
--     API authorised it) make any change.
-- Also: the fingerprint of an API check's request, so a request_id reused for another idea
-- is refused instead of answered with the first idea's verdict.

DROP POLICY kill_switches_isolation ON kill_switches;
CREATE POLICY kill_switches_read ON kill_switches FOR SELECT
    USING (tenant_id IS NULL OR tenant_id = app_current_tenant());
CREATE POLICY kill_switches_insert_own ON kill_switches FOR INSERT
    WITH CHECK (tenant_id = app_current_tenant());
CREATE POLICY kill_switches_update_own ON kill_switches FOR UPDATE
    USING (tenant_id = app_current_tenant())
    WITH CHECK (tenant_id = app_current_tenant());

DROP POLICY kill_switch_events_isolation ON kill_switch_events;
CREATE POLICY kill_switch_events_read ON kill_switch_events FOR SELECT
    USING (tenant_id IS NULL OR tenant_id = app_current_tenant());
CREATE POLICY kill_switch_events_insert_own ON kill_switch_events FOR INSERT
    WITH CHECK (tenant_id = app_current_tenant());

-- The owner (this migration's role, which owns change_global_switch) writes any row: the
-- function below runs as the owner and checks who may do what itself.
DO $$
BEGIN
    EXECUTE format('CREATE POLICY kill_switches_owner ON kill_switches TO %I '
                   'USING (true) WITH CHECK (true)', current_user);
    EXECUTE format('CREATE POLICY kill_switch_events_owner ON kill_switch_events TO %I '
                   'USING (true) WITH CHECK (true)', current_user);
END $$;

CREATE FUNCTION change_global_switch(p_switch text, p_scope text, p_scope_key text,
                                     p_tripped boolean, p_reason text, p_actor text,
                                     p_source_event text, p_at timestamptz,
                                     p_only_auto boolean DEFAULT false)
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_changed boolean;
BEGIN
    IF app_current_tenant() IS NOT NULL
       AND (p_actor <> 'auto' OR p_switch NOT IN ('stale_data', 'model_staleness')) THEN
        RAISE EXCEPTION 'a tenant session may only make automatic changes to the data-driven '
                        'global switches (stale_data, model_staleness), not % by %',
                        p_switch, p_actor
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_tripped THEN
        -- a person's trip takes over an automatic one (data must not reset it later)
        INSERT INTO kill_switches AS k (switch, scope, scope_key, tenant_id, tripped, reason,
                                        actor, changed_at)
        VALUES (p_switch, p_scope, coalesce(p_scope_key, ''), NULL, true, p_reason, p_actor, p_at)
        ON CONFLICT (switch, scope, scope_key, tenant_key) DO UPDATE
            SET tripped = true, reason = EXCLUDED.reason, actor = EXCLUDED.actor,
                changed_at = EXCLUDED.changed_at
            WHERE NOT k.tripped OR (k.actor = 'auto' AND EXCLUDED.actor <> 'auto');
    ELSE
        UPDATE kill_switches SET tripped = false, reason = p_reason, actor = p_actor,
                                 changed_at = p_at
         WHERE switch = p_switch AND scope = p_scope AND scope_key = coalesce(p_scope_key, '')
           AND tenant_id IS NULL AND tripped AND (NOT p_only_auto OR actor = 'auto');
    END IF;
    GET DIAGNOSTICS v_changed = ROW_COUNT;
    IF v_changed THEN
        INSERT INTO kill_switch_events (switch, scope, scope_key, tenant_id, tripped, reason,
                                        actor, source_event, occurred_at)
        VALUES (p_switch, p_scope, coalesce(p_scope_key, ''), NULL, p_tripped, p_reason,
                p_actor, p_source_event, p_at);
    END IF;
    RETURN v_changed;
END $$;
REVOKE ALL ON FUNCTION change_global_switch(text, text, text, boolean, text, text, text,
                                            timestamptz, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION change_global_switch(text, text, text, boolean, text, text, text,
                                               timestamptz, boolean) TO qs_app;

ALTER TABLE risk_verdicts ADD COLUMN request_hash text;  -- sha256 of an API check's request
