-- 0007: the health of each production model, next to its pointer: when retrain last
-- checked it, whether it is flagged (stale or drifted) and why. The model-staleness kill
-- switch reads it for the models a proposal relies on.

ALTER TABLE model_pointers
    ADD COLUMN health jsonb,
    ADD COLUMN flagged boolean NOT NULL DEFAULT false,
    ADD COLUMN health_checked_at timestamptz;

GRANT UPDATE (health, flagged, health_checked_at) ON model_pointers TO qs_app;
