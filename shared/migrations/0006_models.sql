-- 0006: the model registry's production layer (retrain, issue #5).
--
-- model_versions     every trained version of a model type, global (tenant_id NULL) or a
--                    tenant's own, with its artifact (GCS URI, SHA-256, size), feature
--                    schema, metrics, the judgement that promoted or rejected it, and its
--                    lineage (parent version, code commit, data version and end date, the
--                    MLflow run that tracked the training);
-- model_pointers     the production pointer per (model type, tenant): what serving loads;
-- training_attempts  every attempt that did not produce a promoted or rejected version:
--                    the error, partial metrics and input data version.
--
-- States: staged → shadow → production → archived (rejected from staged or shadow; an
-- archived version returns to production by a rollback). At most one production version
-- per (model type, tenant), enforced by a partial unique index; the pointer and the states
-- change together in one SERIALIZABLE transaction (shared/adapters/registry.py).
--
-- Row-level security: a tenant reads the global models and its own; it writes only its own.
-- A session without a tenant (the scheduled retrain of global models) writes global rows.

CREATE TABLE model_versions (
    model_type       text NOT NULL CHECK (model_type ~ '^[a-z][a-z0-9_]{1,40}$'),
    tenant_id        uuid REFERENCES tenants (tenant_id),
    tenant_key       text GENERATED ALWAYS AS (coalesce(tenant_id::text, '')) STORED,
    version          integer NOT NULL CHECK (version > 0),
    state            text NOT NULL CHECK (state IN ('staged', 'shadow', 'production',
                                                    'archived', 'rejected')),
    artifact_uri     text NOT NULL,
    sha256           text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes       bigint NOT NULL CHECK (size_bytes > 0),
    feature_schema   jsonb NOT NULL,
    metrics          jsonb NOT NULL,
    judgement        text,
    paired           jsonb,
    parent_version   integer,
    code_commit      text NOT NULL,
    data_version     text NOT NULL,
    data_end         date NOT NULL,
    run_id           text NOT NULL,
    tracking_run_id  text,                       -- the MLflow run that trained it
    created_at       timestamptz NOT NULL DEFAULT now(),
    promoted_at      timestamptz,
    state_changed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_type, tenant_key, version)
);
CREATE UNIQUE INDEX model_versions_one_production ON model_versions (model_type, tenant_key)
    WHERE state = 'production';

CREATE TABLE model_pointers (
    model_type  text NOT NULL,
    tenant_id   uuid REFERENCES tenants (tenant_id),
    tenant_key  text GENERATED ALWAYS AS (coalesce(tenant_id::text, '')) STORED,
    version     integer NOT NULL,
    sha256      text NOT NULL,
    artifact_uri text NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (model_type, tenant_key),
    FOREIGN KEY (model_type, tenant_key, version)
        REFERENCES model_versions (model_type, tenant_key, version)
);

CREATE TABLE training_attempts (
    attempt_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_type      text NOT NULL,
    tenant_id       uuid REFERENCES tenants (tenant_id),
    run_id          text NOT NULL,
    status          text NOT NULL CHECK (status IN ('failed', 'locked_out')),
    reason_code     text NOT NULL,
    error           text NOT NULL,
    partial_metrics jsonb NOT NULL DEFAULT '{}'::jsonb,
    data_version    text,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX training_attempts_model_time ON training_attempts (model_type, finished_at);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['model_versions', 'model_pointers', 'training_attempts'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I FOR SELECT '
                       'USING (tenant_id IS NULL OR tenant_id = app_current_tenant())',
                       t || '_read', t);
        EXECUTE format('CREATE POLICY %I ON %I FOR INSERT WITH CHECK ('
                       '(tenant_id IS NULL AND app_current_tenant() IS NULL) '
                       'OR tenant_id = app_current_tenant())', t || '_insert', t);
        EXECUTE format('CREATE POLICY %I ON %I FOR UPDATE USING ('
                       '(tenant_id IS NULL AND app_current_tenant() IS NULL) '
                       'OR tenant_id = app_current_tenant()) WITH CHECK ('
                       '(tenant_id IS NULL AND app_current_tenant() IS NULL) '
                       'OR tenant_id = app_current_tenant())', t || '_update', t);
        -- the owner (operators' maintenance, retention) sees and changes every row
        EXECUTE format('CREATE POLICY %I ON %I TO %I USING (true) WITH CHECK (true)',
                       t || '_owner', t, current_user);
    END LOOP;
END $$;

GRANT SELECT, INSERT ON model_versions, model_pointers, training_attempts TO qs_app;
GRANT UPDATE (state, judgement, paired, promoted_at, state_changed_at) ON model_versions TO qs_app;
GRANT UPDATE (version, sha256, artifact_uri, updated_at) ON model_pointers TO qs_app;
-- training_attempts is append-only for the app: INSERT and SELECT only.
