"""The deployment's shape as data: functions, topics, push subscriptions, retry policies.

One source of truth for the local cloud (``local/``) and the terraform consistency checks:
which function consumes which topic, with which retry policy and dead-letter settings, and
how each function is sized.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts import TOPICS


class RetryPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    minimum_backoff: timedelta = timedelta(seconds=10)
    maximum_backoff: timedelta = timedelta(seconds=600)
    max_delivery_attempts: int = Field(5, ge=5, le=100)  # Pub/Sub's allowed range


class FunctionSpec(BaseModel):
    """One Cloud Function (gen2) and what it consumes."""

    model_config = ConfigDict(frozen=True)

    name: str
    source: str = Field(description="Folder with main.py, relative to the repository root")
    entry_point: str = "entry"
    consumes: tuple[str, ...] = ()
    memory_mb: int = 512
    timeout_s: int = 60
    max_instances: int = 10
    min_instances: int = 0


DEAD_LETTER_TOPIC = "qs.dead-letter"

FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec(name="chain_poll", source="functions/chain_poll", memory_mb=1024, timeout_s=60),
    FunctionSpec(name="news_ingest", source="functions/news_ingest", timeout_s=120),
    FunctionSpec(name="decide", source="functions/decide", consumes=("chain.snapshot",),
                 memory_mb=1024, timeout_s=120),
    FunctionSpec(name="risk_check", source="functions/risk_check", consumes=("decision.proposed",)),
    FunctionSpec(name="retrain", source="functions/retrain", memory_mb=4096, timeout_s=900,
                 max_instances=2),
    FunctionSpec(
        name="notify",
        source="functions/notify",
        consumes=(
            "signal.approved", "signal.blocked", "killswitch.tripped", "killswitch.reset",
            "model.promoted", "model.rejected", "retrain.failed", "notify.dead",
        ),
    ),
)

# The local cloud's canary, consuming its own topic. Not deployed by terraform.
PROBE = FunctionSpec(name="probe", source="local/probe", consumes=("local.probe",))

DEFAULT_RETRY = RetryPolicy()


def subscription_id(topic: str, function: str) -> str:
    """Push subscription id for ``function`` on ``topic``, e.g. ``chain.snapshot--decide``."""
    return f"{topic}--{function}"


def all_topics() -> tuple[str, ...]:
    """Every topic with a contract, plus the dead-letter topic."""
    return (*TOPICS, DEAD_LETTER_TOPIC)


def _check() -> None:
    for spec in (*FUNCTIONS, PROBE):
        unknown = set(spec.consumes) - set(TOPICS)
        if unknown:
            raise ValueError(f"{spec.name} consumes topics without a contract: {sorted(unknown)}")


_check()
