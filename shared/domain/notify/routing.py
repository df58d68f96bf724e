"""Who is told what, where and when: a tenant's notification preferences. Pure.

Preferences live in ``tenants.settings.notify``::

    {"telegram": {"chat_id": 123456789}, "email": {"to": "desk@example.com"},
     "webhook": {"url": "https://hooks.example.com/qs"},
     "routes": {"signal.approved": ["telegram", "email", "webhook"], ...},
     "quiet_hours": {"from": "22:00", "to": "07:00"},  # IST
     "max_per_hour": 30}

A channel is used when it is configured *and* routed for the event's kind (defaults:
:data:`DEFAULT_ROUTES`). Quiet hours (IST, may wrap midnight) hold back everything but
urgent kinds (a kill switch tripping); more than ``max_per_hour`` sent in the last hour
holds back the rest. Held-back deliveries are recorded as *skipped* with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = ["CHANNELS", "DEFAULT_ROUTES", "URGENT", "NotifyPrefs", "Planned", "in_quiet_hours",
           "masked", "plan", "prefs_from_settings"]

IST = ZoneInfo("Asia/Kolkata")
CHANNELS: tuple[str, ...] = ("telegram", "email", "webhook")
DEFAULT_ROUTES: Mapping[str, tuple[str, ...]] = {
    "signal.approved": ("telegram", "email", "webhook"),
    "signal.blocked": ("email", "webhook"),
    "killswitch.tripped": ("telegram", "email", "webhook"),
    "killswitch.reset": ("email", "webhook"),
    "model.promoted": ("email",),
    "model.rejected": ("email",),
    "retrain.failed": ("email",),
    "daily.digest": ("email",),
}
URGENT = frozenset({"killswitch.tripped"})
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class NotifyPrefs(BaseModel):
    """A tenant's notification preferences (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    telegram: dict[str, Any] | None = None
    email: dict[str, Any] | None = None
    webhook: dict[str, Any] | None = None
    routes: dict[str, tuple[str, ...]] = Field(default_factory=lambda: dict(DEFAULT_ROUTES))
    quiet_hours: dict[str, str] | None = None
    max_per_hour: int = Field(30, ge=1)

    @field_validator("routes")
    @classmethod
    def _known_channels(cls, v: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for kind, channels in v.items():
            unknown = set(channels) - set(CHANNELS)
            if unknown:
                raise ValueError(f"routes.{kind}: unknown channel(s) {sorted(unknown)}")
        return {**DEFAULT_ROUTES, **v}

    @field_validator("quiet_hours")
    @classmethod
    def _hours(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is None:
            return v
        if set(v) != {"from", "to"} or not all(_HHMM.match(str(x)) for x in v.values()):
            raise ValueError('quiet_hours must be {"from": "HH:MM", "to": "HH:MM"} (IST)')
        return v

    def target(self, channel: str) -> dict[str, Any] | None:
        return getattr(self, channel)


def prefs_from_settings(settings: Mapping[str, Any]) -> NotifyPrefs:
    """``settings.notify`` as :class:`NotifyPrefs`; a bad section raises ``ValueError``
    naming the field."""
    section = settings.get("notify") or {}
    if not isinstance(section, dict):
        raise ValueError("tenant settings: notify must be an object")
    try:
        return NotifyPrefs.model_validate(section)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"tenant settings: notify.{'.'.join(str(p) for p in first['loc'])}: "
                         f"{first['msg']}") from None


def in_quiet_hours(now: datetime, quiet: Mapping[str, str] | None) -> bool:
    """Whether ``now`` (aware) falls in the IST window ``[from, to)``, which may wrap midnight."""
    if not quiet:
        return False
    t = now.astimezone(IST).time()
    start = time.fromisoformat(quiet["from"])
    end = time.fromisoformat(quiet["to"])
    if start == end:
        return False
    return start <= t < end if start < end else (t >= start or t < end)


@dataclass(frozen=True, slots=True)
class Planned:
    """A delivery to record: the channel, its target, and why it is held back (or None)."""

    channel: str
    target: dict[str, Any]
    skip_reason: str | None = None


def plan(kind: str, prefs: NotifyPrefs, *, now: datetime, sent_last_hour: int
         ) -> tuple[Planned, ...]:
    """The deliveries of one event for one tenant (see the module docstring)."""
    out = []
    for channel in prefs.routes.get(kind, ()):
        target = prefs.target(channel)
        if not target:
            continue  # routed but not configured: nothing to record
        reason = None
        if kind not in URGENT and in_quiet_hours(now, prefs.quiet_hours):
            q = prefs.quiet_hours or {}
            reason = f"quiet hours {q.get('from')}-{q.get('to')} IST"
        elif kind not in URGENT and sent_last_hour >= prefs.max_per_hour:
            reason = f"rate limit: {sent_last_hour} sent in the last hour (max {prefs.max_per_hour})"
        out.append(Planned(channel, dict(target), reason))
    return tuple(out)


def masked(channel: str, target: Mapping[str, Any]) -> str:
    """A target as the ledger records it: enough to recognise, not enough to misuse."""
    if channel == "telegram":
        chat = str(target.get("chat_id", ""))
        return f"chat …{chat[-4:]}" if len(chat) > 4 else f"chat {chat}"
    if channel == "email":
        to = str(target.get("to", ""))
        user, _, domain = to.partition("@")
        return f"{user[:1]}***@{domain}" if domain else "***"
    url = str(target.get("url", ""))
    m = re.match(r"^(https?://[^/]+)", url)
    return m.group(1) if m else "***"
