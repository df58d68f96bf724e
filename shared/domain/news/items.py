"""The values news_ingest's pure core passes around."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["Classification", "FeedItem", "FeedRejected", "ItemRejection", "ParsedFeed",
           "EVENT_TYPES"]

EVENT_TYPES: tuple[str, ...] = (
    "monetary_policy", "fiscal_budget", "inflation_data", "global_macro", "earnings",
    "regulatory", "geopolitical", "corporate_action", "other")
"""The event types of the classifier (``other``: nothing fired)."""


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One entry of a feed, as parsed.

    Attributes
    ----------
    source
        The configured feed's name (e.g. ``"thehindu-economy"``).
    guid
        The entry's id/guid, if it has one.
    title
        Plain text (CDATA unwrapped, markup removed, whitespace collapsed); never empty.
    link
        The entry's URL, if any.
    published
        Timezone-aware publication time, or None when the entry has no parseable date. The
        feed's own offset is kept (``+0530``) when the raw date parses; otherwise the
        instant is feedparser's, in UTC.
    summary
        Plain-text description (may be empty).
    """

    source: str
    guid: str | None
    title: str
    link: str | None
    published: datetime | None
    summary: str = ""


@dataclass(frozen=True, slots=True)
class ItemRejection:
    """An entry left out of a feed that was otherwise usable, and why (``reason_code``:
    ``future_date``, ``duplicate_guid``, ``no_title``, ``truncated``: an entry after the
    last complete one of a body cut short)."""

    source: str
    guid: str | None
    title: str
    reason_code: str
    reason: str


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A usable feed: its entries and the entries left out."""

    source: str
    items: tuple[FeedItem, ...]
    rejected: tuple[ItemRejection, ...] = ()


class FeedRejected(ValueError):
    """The whole feed is unusable (``reason_code``: ``too_large``, ``not_a_feed`` (an HTML
    page), ``malformed``, ``encoding``, ``empty``); the other feeds carry on."""

    def __init__(self, reason_code: str, reason: str) -> None:
        super().__init__(reason)
        self.reason_code = reason_code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Classification:
    """What the rule set made of an item.

    Attributes
    ----------
    event_type
        One of :data:`EVENT_TYPES`.
    symbols
        Index symbols affected (``NIFTY``, ``BANKNIFTY``); empty: market-wide.
    sectors
        Sectors named (``banks``, ``it``, ``energy``...).
    sentiment
        In [-1, 1]: negative to positive for the market.
    impact
        In [0, 1]: expected market impact.
    why
        The rules and terms that fired, human-readable (``"monetary_policy: 'repo rate'"``).
    ruleset
        The version of the rule set that classified it.
    """

    event_type: str
    symbols: tuple[str, ...]
    sectors: tuple[str, ...]
    sentiment: float
    impact: float
    why: tuple[str, ...] = field(default_factory=tuple)
    ruleset: str = ""
