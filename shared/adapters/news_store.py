"""Postgres reads and writes of news_ingest (migration 0010), and the news the gate reads."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.adapters.db import Session
from shared.contracts import NewsEventV1
from shared.domain.risk.inputs import NewsItem, NewsState

__all__ = ["EventRow", "active_news", "feed_states", "insert_events", "known_stories",
           "mark_events_published", "record_feed_error", "save_feed_poll", "signed64",
           "stored_item_keys", "unpublished_events"]

# The widest gate window (the rule table's US CPI, 900 minutes) and then some.
NEWS_LOOKAROUND = timedelta(hours=16)


def signed64(x: int) -> int:
    """A 64-bit unsigned fingerprint as Postgres ``bigint`` (two's complement)."""
    return x - (1 << 64) if x >= (1 << 63) else x


def unsigned64(x: int) -> int:
    return x + (1 << 64) if x < 0 else x


@dataclass(frozen=True, slots=True)
class EventRow:
    """One ``news_events`` row to insert (``dedup_key`` makes the insert idempotent)."""

    dedup_key: str
    kind: str
    event_type: str
    title: str
    occurs_at: datetime
    symbols: tuple[str, ...]
    impact: float
    action: str
    window_minutes: int
    source: str
    why: tuple[str, ...] = ()


def feed_states(s: Session) -> dict[str, tuple[str | None, str | None, str]]:
    """Per feed: (ETag, Last-Modified, URL) of the last successful poll."""
    return {name: (etag, lm, url) for name, url, etag, lm in s.execute(
        "SELECT name, url, etag, last_modified FROM news_feeds").rows}


def save_feed_poll(s: Session, name: str, url: str, *, now: datetime, status: str,
                   etag: str | None = None, last_modified: str | None = None,
                   error: str | None = None, keep_validators: bool = False) -> None:
    """Record a poll of the feed (validators replaced unless ``keep_validators``)."""
    s.execute(
        "INSERT INTO news_feeds (name, url, etag, last_modified, last_polled_at, last_status, "
        "last_error) VALUES (:n, :u, :e, :lm, :t, :st, :err) ON CONFLICT (name) DO UPDATE SET "
        "url = EXCLUDED.url, last_polled_at = EXCLUDED.last_polled_at, "
        "last_status = EXCLUDED.last_status, last_error = EXCLUDED.last_error, "
        "etag = CASE WHEN :keep THEN news_feeds.etag ELSE EXCLUDED.etag END, "
        "last_modified = CASE WHEN :keep THEN news_feeds.last_modified "
        "ELSE EXCLUDED.last_modified END",
        n=name, u=url, e=etag, lm=last_modified, t=now, st=status, err=error,
        keep=keep_validators)


def record_feed_error(s: Session, name: str, url: str, code: str, reason: str,
                      now: datetime, detail: dict[str, Any] | None = None) -> None:
    s.execute("INSERT INTO news_feed_errors (feed, reason_code, reason, detail, occurred_at) "
              "VALUES (:f, :c, :r, CAST(:d AS jsonb), :t)", f=name, c=code, r=reason[:2000],
              d=json.dumps(detail or {}, default=str), t=now)
    save_feed_poll(s, name, url, now=now, status="error", error=f"{code}: {reason}"[:2000],
                   keep_validators=True)


def known_stories(s: Session, since: datetime) -> list[tuple[str, int, list[str]]]:
    """Stories first seen since ``since``: (id, fingerprint, normalised URLs)."""
    rows = s.execute(
        "SELECT st.story_id, st.fingerprint, coalesce(array_agg(i.normalized_url) FILTER "
        "(WHERE i.normalized_url IS NOT NULL), '{}') FROM news_stories st "
        "LEFT JOIN news_items i USING (story_id) WHERE st.first_seen_at >= :t "
        "GROUP BY st.story_id, st.fingerprint", t=since).rows
    return [(sid, unsigned64(int(fp)), list(urls or [])) for sid, fp, urls in rows]


def stored_item_keys(s: Session, keys: Iterable[str]) -> set[str]:
    keys = list(keys)
    if not keys:
        return set()
    return {k for (k,) in s.execute("SELECT item_key FROM news_items WHERE item_key = ANY(:k)",
                                    k=keys).rows}


def insert_events(s: Session, rows: Iterable[EventRow]) -> int:
    """Insert events not stored yet; returns how many were new."""
    n = 0
    for r in rows:
        n += len(s.execute(
            "INSERT INTO news_events (event_id, dedup_key, kind, event_type, title, occurs_at, "
            "symbols, impact, action, window_minutes, source, why) VALUES (:id, :k, :kind, "
            ":t, :title, :at, CAST(:sym AS text[]), :imp, :act, :w, :src, CAST(:why AS jsonb)) "
            "ON CONFLICT (dedup_key) DO NOTHING RETURNING 1",
            id=uuid.uuid4(), k=r.dedup_key, kind=r.kind, t=r.event_type, title=r.title[:500],
            at=r.occurs_at, sym="{" + ",".join(r.symbols) + "}", imp=r.impact, act=r.action,
            w=r.window_minutes, src=r.source[:2000], why=json.dumps(list(r.why))).rows)
    return n


def unpublished_events(s: Session, limit: int = 500) -> list[NewsEventV1]:
    rows = s.execute(
        "SELECT event_id, kind, event_type, title, occurs_at, symbols, impact, action, "
        "window_minutes FROM news_events WHERE published_at IS NULL ORDER BY created_at "
        "LIMIT :n FOR UPDATE SKIP LOCKED", n=limit).dicts()
    return [NewsEventV1(**{**r, "symbols": tuple(r["symbols"] or ())}) for r in rows]


def mark_events_published(s: Session, ids: Iterable[uuid.UUID]) -> None:
    ids = [str(i) for i in ids]
    if ids:
        s.execute("UPDATE news_events SET published_at = now() WHERE event_id = "
                  "ANY(CAST(:ids AS uuid[]))", ids="{" + ",".join(ids) + "}")


def active_news(s: Session, now: datetime) -> NewsState:
    """The news and scheduled events near ``now`` (every symbol; the gate filters by the
    proposal's symbol and each event's window)."""
    rows = s.execute(
        "SELECT event_id, title, occurs_at, window_minutes, action, symbols FROM news_events "
        "WHERE occurs_at BETWEEN :a AND :b AND action <> 'proceed' ORDER BY occurs_at",
        a=now - NEWS_LOOKAROUND, b=now + NEWS_LOOKAROUND).rows
    return NewsState(tuple(NewsItem(event_id=str(i), title=t, occurs_at=at, window_minutes=w,
                                    action=act, symbols=tuple(sym or ()))
                           for i, t, at, w, act, sym in rows))
