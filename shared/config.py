"""Settings, read once from the environment by pydantic-settings and then frozen.

Only adapters and entry points read settings; domain code receives plain arguments.
Every variable is prefixed ``QS_`` except the ones whose names are fixed by Google's
client libraries or by convention (``DATABASE_URL``, ``PUBSUB_EMULATOR_HOST``,
``STORAGE_EMULATOR_HOST``, ``K_SERVICE``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["local", "test", "production"]
AuthMode = Literal["google", "local"]


class Settings(BaseSettings):
    """Deployment settings. Defaults are the local cloud's."""

    model_config = SettingsConfigDict(env_prefix="QS_", frozen=True, extra="ignore")

    environment: Environment = Field("local", description="local, test or production")
    project_id: str = Field("quantsentinel-local", description="GCP project id")
    function_name: str = Field(
        "unknown",
        validation_alias=AliasChoices("QS_FUNCTION_NAME", "K_SERVICE"),
        description="Name of the running function (Cloud Run sets K_SERVICE)",
    )
    log_level: str = "INFO"

    # --- database -------------------------------------------------------------------
    database_url: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("DATABASE_URL", "QS_DATABASE_URL"),
        description="postgresql://user:pass@host:port/db or postgresql://user@/db?host=/socket/dir",
    )
    cloudsql_instance: str | None = Field(
        None, description="project:region:instance; when set, connect via the Cloud SQL connector"
    )
    db_user: str = "qs_app"
    db_password: SecretStr | None = None
    db_name: str = "quantsentinel"
    db_iam_auth: bool = False
    db_ip_type: Literal["private", "public", "psc"] = "private"

    # --- messaging and storage ------------------------------------------------------
    pubsub_emulator_host: str | None = Field(
        None, validation_alias=AliasChoices("PUBSUB_EMULATOR_HOST", "QS_PUBSUB_EMULATOR_HOST")
    )
    storage_emulator_host: str | None = Field(
        None, validation_alias=AliasChoices("STORAGE_EMULATOR_HOST", "QS_STORAGE_EMULATOR_HOST")
    )
    raw_bucket: str = "qs-raw-snapshots"
    models_bucket: str = "qs-model-artifacts"
    mlflow_tracking_uri: SecretStr | None = Field(
        None, description="MLflow backend store (postgresql://role:pw@host/mlflow, its own "
                          "database); unset: retrain tracks nothing (the registry still "
                          "records every version)")
    mlflow_artifact_root: str | None = Field(
        None, description="where MLflow puts run artifacts (default gs://<models_bucket>/mlflow)")
    history_uri: str = Field(
        "gs://qs-index-history",
        description="where retrain reads daily index history: gs://bucket[/prefix] or "
                    "file:<dir>, holding daily/<SYMBOL>.csv",
    )
    dead_letter_topic: str = "qs.dead-letter"

    # --- market data -------------------------------------------------------------------
    chain_source: str = Field(
        "simulator",
        description="simulator | nse | upstox | replay:<directory> (where chain_poll gets chains)",
    )
    simulator_seed: int = Field(1234, description="seed of the market simulator")
    upstox_access_token: SecretStr | None = Field(None, description="Upstox API v2 token (daily)")
    nse_base_url: str = "https://www.nseindia.com"

    # --- news -----------------------------------------------------------------------------
    news_feeds: tuple[dict[str, str], ...] | None = Field(
        None, description='JSON list of {"name", "url"} feeds (default: the packaged '
                          "shared/data/news_feeds.yaml)")
    news_allowed_hosts: tuple[str, ...] = Field(
        (), description="feed hosts allowed besides the packaged allowlist (e.g. a local "
                        "test server); any other host is refused before a request is made")
    news_impact_threshold: float = Field(
        0.6, ge=0, le=1, description="news stories at or above this impact become news.event")
    event_calendar: str | None = Field(
        None, description="an extra scheduled-event calendar CSV (file path), read with the "
                          "packaged one (occurs_at,event_type,title,source)")
    upstox_base_url: str = "https://api.upstox.com"

    # --- notify ---------------------------------------------------------------------------
    telegram_bot_token: SecretStr | None = Field(None, description="Telegram Bot API token")
    telegram_base_url: str = "https://api.telegram.org"
    email_backend: Literal["smtp", "ses"] = Field("smtp", description="smtp or ses (Amazon SES)")
    smtp_host: str | None = Field(None, description="SMTP server (email_backend=smtp)")
    smtp_port: int = 587
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    email_sender: str = Field("alerts@quantsentinel.local", description="the From address")
    ses_region: str = "ap-south-1"
    webhook_signing_key: SecretStr | None = Field(
        None, description="HMAC-SHA256 key of outgoing webhooks (receivers verify with it)")
    webhook_allow_private: bool = Field(
        False, description="allow webhook URLs on private addresses (local tests only)")
    operator_email: str | None = Field(None, description="where notify.dead goes")
    notify_timeout_s: float = Field(10.0, gt=0, description="per-channel send budget")
    notify_max_attempts: int = Field(4, ge=1, description="attempts before a delivery is dead")

    # --- replays (local and test only) ---------------------------------------------------
    clock_offset_s: float = Field(
        0.0, description="shift the functions' clock by this many seconds (a replayed "
                         "session runs on its own market time); refused when deployed")
    clock_file: Path | None = Field(
        None, description="read the functions' clock from this replay anchor file (make run's "
                          "session clock, shared.adapters.replay_clock); refused when deployed")

    # --- request authentication ---------------------------------------------------------
    auth_mode: AuthMode = Field(
        "local", description="google: verify Google-signed OIDC ID tokens; local: HS256 harness tokens"
    )
    auth_audience: str | None = Field(
        None, description="Expected token audience (the function URL in production)"
    )
    allowed_invokers: tuple[str, ...] = Field(
        (), description="Service-account emails allowed to call (push, scheduler, operator)"
    )
    local_auth_secret: SecretStr | None = Field(
        None, description="HS256 secret of the local harness (the local cloud generates one per start)"
    )
    k_service: str | None = Field(
        None, validation_alias="K_SERVICE", description="Set by Cloud Run: we are deployed"
    )

    @model_validator(mode="after")
    def _deployed_is_strict(self) -> Settings:
        deployed = self.environment == "production" or self.k_service is not None
        if deployed:
            if self.auth_mode != "google":
                raise ValueError("a deployed function requires QS_AUTH_MODE=google "
                                 "(K_SERVICE is set or QS_ENVIRONMENT=production)")
            if not self.allowed_invokers:
                raise ValueError("a deployed function requires QS_ALLOWED_INVOKERS (service-account emails)")
            if not self.auth_audience:
                raise ValueError("a deployed function requires QS_AUTH_AUDIENCE (its own URL)")
            if self.webhook_allow_private:
                raise ValueError("QS_WEBHOOK_ALLOW_PRIVATE is for local tests")
            if self.clock_offset_s != 0.0:
                raise ValueError("QS_CLOCK_OFFSET_S is for local replays: a deployed function "
                                 "runs on the real clock")
            if self.clock_file is not None:
                raise ValueError("QS_CLOCK_FILE is for local replays: a deployed function "
                                 "runs on the real clock")
            if self.database_url is None and self.cloudsql_instance is None:
                raise ValueError("a deployed function requires QS_CLOUDSQL_INSTANCE or DATABASE_URL")
        if self.auth_mode == "local" and (
            self.local_auth_secret is None or len(self.local_auth_secret.get_secret_value()) < 32
        ):
            raise ValueError("QS_AUTH_MODE=local requires QS_LOCAL_AUTH_SECRET of at least 32 characters")
        return self


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment, with explicit overrides winning."""
    return Settings(**overrides)  # type: ignore[arg-type]
