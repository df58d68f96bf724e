-- 0004: risk_check as a service. Who may call the HTTP API for which tenant (principals),
-- where a verdict came from (a decide proposal or an API check), and the kill-switch
-- resets a verdict's data called for (published with it, like its trips).

-- Principals: the authenticated callers (Google identities; harness identities locally) ---
-- A row grants one identity a role for one tenant, or for the whole platform when
-- tenant_id is NULL:
--   trader    may submit trade ideas for the tenant and read its verdicts;
--   operator  may also trip and reset the tenant's kill switches; a platform operator
--             (tenant_id NULL) may trip and reset any switch, global ones included.
-- The app role cannot read or change the table: it asks principal_grants(email), a SECURITY
-- DEFINER function that returns only that identity's grants. Operators manage it as the
-- owner (`qs principals grant|revoke`).

CREATE TABLE api_principals (
    email      text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 320),
    tenant_id  uuid REFERENCES tenants (tenant_id),
    role       text NOT NULL CHECK (role IN ('trader', 'operator')),
    granted_at timestamptz NOT NULL DEFAULT now(),
    granted_by text NOT NULL DEFAULT current_user,
    tenant_key text GENERATED ALWAYS AS (coalesce(tenant_id::text, '')) STORED,
    PRIMARY KEY (email, tenant_key)
);
-- The app role has no grant on the table at all, and row-level security is enabled with no
-- policy (not FORCEd: the owner, and so the SECURITY DEFINER function below, sees every row).
ALTER TABLE api_principals ENABLE ROW LEVEL SECURITY;

CREATE FUNCTION principal_grants(p_email text)
    RETURNS TABLE (tenant_id uuid, role text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$ SELECT p.tenant_id, p.role FROM api_principals p
          LEFT JOIN tenants t ON t.tenant_id = p.tenant_id
          WHERE p.email = lower(p_email) AND (p.tenant_id IS NULL OR t.active)
          ORDER BY p.tenant_key $$;
REVOKE ALL ON FUNCTION principal_grants(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION principal_grants(text) TO qs_app;

-- Verdicts: their origin, and the resets their data called for --------------------------
-- origin 'proposal': a decide proposal (decision.proposed), published as signal.*;
-- origin 'api': a tenant's own trade idea checked over HTTP, answered to the caller and
-- never published as a signal (and it opens no paper position).
ALTER TABLE risk_verdicts
    ADD COLUMN origin text NOT NULL DEFAULT 'proposal' CHECK (origin IN ('proposal', 'api')),
    ADD COLUMN resets jsonb NOT NULL DEFAULT '[]'::jsonb,   -- killswitch.reset messages to publish
    ADD COLUMN caller text;                                  -- the API caller, for origin 'api'

-- A paper position has legs: marking it to market needs them.
ALTER TABLE paper_positions ADD CONSTRAINT paper_positions_have_legs
    CHECK (jsonb_typeof(legs) = 'array' AND jsonb_array_length(legs) > 0);
