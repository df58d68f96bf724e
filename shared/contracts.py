"""Versioned message contracts for every Pub/Sub topic.

Every message is a frozen pydantic model. On the wire it is the model's JSON as the message
data, with these attributes (set by :func:`encode`, read by :func:`decode`):

``contract``
    The topic id the contract belongs to, e.g. ``chain.snapshot``. (Not ``topic``: that
    name is a positional parameter of the Pub/Sub client's ``publish``.)
``contract_version``
    The contract version, an integer as a string. A consumer accepts only versions it knows.
``tenant_id``
    Present on tenant-scoped messages, so that routing and isolation checks need no parse.

A breaking change adds a new model class with ``schema_version = N + 1`` to the registry; producers
switch when every consumer knows it. Unknown topics and versions are permanent errors.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from shared.errors import ContractViolation, UnknownTopic

PositiveLots = Annotated[int, Field(gt=0)]


class Message(BaseModel):
    """Base of every contract: frozen, strict about unknown fields, timezone-aware times,
    and no NaN or infinity (a NaN max loss must never read as "unbounded" downstream)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    topic: ClassVar[str]
    schema_version: ClassVar[int] = 1
    tenant_scoped: ClassVar[bool] = False

    def tenant(self) -> UUID | None:
        return getattr(self, "tenant_id", None) if self.tenant_scoped else None


class OptionType(StrEnum):
    CE = "CE"
    PE = "PE"


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class Structure(StrEnum):
    IRON_CONDOR = "iron_condor"
    SHORT_STRADDLE = "short_straddle"
    LONG_STRADDLE = "long_straddle"
    SHORT_STRANGLE = "short_strangle"
    LONG_STRANGLE = "long_strangle"
    CREDIT_VERTICAL = "credit_vertical"
    DEBIT_VERTICAL = "debit_vertical"
    BUTTERFLY = "butterfly"
    NAKED_SINGLE = "naked_single"
    CUSTOM = "custom"


class Leg(BaseModel):
    """One option leg of a structure. Prices in rupees per unit of the underlying."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    expiry: date
    strike: Decimal = Field(gt=0)
    option_type: OptionType
    side: Side
    lots: PositiveLots
    price: Decimal = Field(ge=0, description="Reference premium, rupees per unit")


# --- market data -------------------------------------------------------------------------


class ChainSnapshotV1(Message):
    """A stored, analysed option-chain snapshot (published by chain_poll)."""

    topic: ClassVar[str] = "chain.snapshot"

    snapshot_id: UUID
    symbol: str = Field(min_length=1, max_length=32)
    asof: AwareDatetime
    spot: float = Field(gt=0)
    source: str
    expiries: tuple[date, ...]
    legs: int = Field(ge=0)
    raw_blob: str = Field(description="gs://bucket/key of the gzipped raw payload")
    flags: tuple[str, ...] = ()


class NewsEventV1(Message):
    """A classified news item or scheduled event at or above the impact threshold."""

    topic: ClassVar[str] = "news.event"

    event_id: UUID
    kind: Literal["news", "scheduled"]
    event_type: str
    title: str
    occurs_at: AwareDatetime
    symbols: tuple[str, ...] = ()
    impact: float = Field(ge=0, le=1)
    action: Literal["proceed", "reduce_25", "reduce_50", "blackout"]
    window_minutes: int = Field(ge=0)


# --- decisions and verdicts -----------------------------------------------------------------


class DecisionProposedV1(Message):
    """One sized trade proposal for one tenant (decide → risk_check)."""

    topic: ClassVar[str] = "decision.proposed"
    tenant_scoped: ClassVar[bool] = True

    proposal_id: UUID
    tenant_id: UUID
    snapshot_id: UUID
    symbol: str
    structure: Structure
    legs: tuple[Leg, ...] = Field(min_length=1)
    lot_size: int = Field(gt=0)
    max_profit: float | None = Field(description="Rupees; None when unbounded")
    max_loss: float | None = Field(description="Rupees, positive; None when unbounded")
    expected_gross_edge: float = Field(description="Rupees per position before costs")
    win_probability: float = Field(ge=0, le=1)
    regime: str
    explanation: dict[str, Any] = Field(default_factory=dict)
    proposed_at: AwareDatetime


class WallVerdict(BaseModel):
    """The verdict of one risk wall or kill switch."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    wall: str
    blocked: bool
    reason_code: str
    reason: str
    numbers: dict[str, float] = Field(default_factory=dict)


class _SignalVerdict(Message):
    tenant_scoped: ClassVar[bool] = True

    verdict_id: UUID
    proposal_id: UUID
    tenant_id: UUID
    dry_run: bool = Field(description="True while the tenant is in the paper-trading lock")
    verdicts: tuple[WallVerdict, ...]
    decided_at: AwareDatetime


class SignalApprovedV1(_SignalVerdict):
    topic: ClassVar[str] = "signal.approved"

    net_ev: float
    total_costs: float
    size_multiplier: float = Field(gt=0, le=1)


class SignalBlockedV1(_SignalVerdict):
    topic: ClassVar[str] = "signal.blocked"

    blocked_by: str
    reason_code: str
    reason: str


# --- kill switches ----------------------------------------------------------------------


class _KillSwitchEvent(Message):
    switch: str
    scope: str = Field(description="global, tenant, strategy, symbol, source, ...")
    scope_key: str | None = None
    tenant_id: UUID | None = None
    reason: str
    actor: str = Field(description="'auto' or the authenticated operator")
    at: AwareDatetime


class KillSwitchTrippedV1(_KillSwitchEvent):
    topic: ClassVar[str] = "killswitch.tripped"


class KillSwitchResetV1(_KillSwitchEvent):
    topic: ClassVar[str] = "killswitch.reset"


# --- models ---------------------------------------------------------------------------


class _ModelEvent(Message):
    model_type: str
    model_version: int = Field(ge=1)
    tenant_id: UUID | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    at: AwareDatetime


class ModelPromotedV1(_ModelEvent):
    topic: ClassVar[str] = "model.promoted"

    previous_model_version: int | None = None


class ModelRejectedV1(_ModelEvent):
    topic: ClassVar[str] = "model.rejected"

    reason: str


class RetrainFailedV1(Message):
    topic: ClassVar[str] = "retrain.failed"

    model_type: str
    tenant_id: UUID | None = None
    error: str
    data_version: str | None = None
    at: AwareDatetime


# --- notifications and the local canary --------------------------------------------------


class NotifyDeadV1(Message):
    """A delivery gave up after its retries; goes to the operator."""

    topic: ClassVar[str] = "notify.dead"

    delivery_id: UUID
    tenant_id: UUID
    channel: Literal["telegram", "email", "webhook"]
    source_event_id: str
    attempts: int = Field(ge=1)
    error: str
    at: AwareDatetime


class ProbePingV1(Message):
    """The local cloud's canary: proves publish → push → function → Postgres end to end.

    ``behaviour`` lets the health check and tests exercise the failure paths: a
    ``transient`` ping keeps failing (and must dead-letter), a ``permanent`` one is
    rejected and acked on first delivery.
    """

    topic: ClassVar[str] = "local.probe"

    probe_id: UUID
    sent_at: AwareDatetime
    behaviour: Literal["ok", "transient", "permanent"] = "ok"


# Versions are immutable once published: never change a registered model, add a new one.
CONTRACTS: dict[str, dict[int, type[Message]]] = {}
for _model in (
    ChainSnapshotV1,
    NewsEventV1,
    DecisionProposedV1,
    SignalApprovedV1,
    SignalBlockedV1,
    KillSwitchTrippedV1,
    KillSwitchResetV1,
    ModelPromotedV1,
    ModelRejectedV1,
    RetrainFailedV1,
    NotifyDeadV1,
    ProbePingV1,
):
    CONTRACTS.setdefault(_model.topic, {})[_model.schema_version] = _model

TOPICS: tuple[str, ...] = tuple(sorted(CONTRACTS))


def encode(message: Message) -> tuple[bytes, dict[str, str]]:
    """Serialise a message to Pub/Sub ``data`` and ``attributes``."""
    attributes = {"contract": message.topic, "contract_version": str(message.schema_version)}
    tenant = message.tenant()
    if tenant is not None:
        attributes["tenant_id"] = str(tenant)
    return message.model_dump_json().encode(), attributes


def decode(data: bytes, attributes: dict[str, str]) -> Message:
    """Parse Pub/Sub ``data`` and ``attributes`` into the contract they name.

    Raises
    ------
    UnknownTopic
        The ``contract`` attribute is missing or has no contract, or the version is unknown.
    ContractViolation
        The payload is not JSON or does not satisfy the contract.
    """
    topic = attributes.get("contract")
    if not topic or topic not in CONTRACTS:
        raise UnknownTopic(f"message names no known contract (contract={topic!r})")
    raw_version = attributes.get("contract_version", "1")
    try:
        model = CONTRACTS[topic][int(raw_version)]
    except (ValueError, KeyError):
        raise UnknownTopic(
            f"topic {topic!r} has no contract version {raw_version!r} "
            f"(known: {sorted(CONTRACTS[topic])})"
        ) from None
    try:
        payload = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ContractViolation(f"{topic} v{raw_version}: data is not JSON ({exc})") from None
    try:
        message = model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise ContractViolation(
            f"{topic} v{raw_version}: {where}: {first['msg']} ({exc.error_count()} error(s))"
        ) from None
    declared = attributes.get("tenant_id")
    if declared is not None and str(message.tenant()) != declared:
        raise ContractViolation(
            f"{topic}: tenant_id attribute {declared} does not match the payload's tenant"
        )
    return message
