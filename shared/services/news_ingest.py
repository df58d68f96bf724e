"""news_ingest: feeds and the event calendar → stored, deduplicated, classified → news.event.

Each scheduler firing:

1. **Fetch** every configured feed concurrently within a time budget
   (:class:`~shared.adapters.feeds_http.FeedFetcher`: allowlisted hosts only, conditional
   GET with the stored ETag / Last-Modified, timeouts and backoff, a size cap). A feed that
   fails is recorded in ``news_feed_errors``; the others carry on.
2. **Parse, dedup, classify** (the pure core, :mod:`shared.domain.news`): feedparser;
   items already stored are skipped (``item_key``); a new item joins a story (the same
   normalised URL, or a near-duplicate title fingerprint, across feeds and polls) or
   starts one, which the versioned rule set classifies (type, symbols, sectors, sentiment,
   impact, and why). Entries left out of a usable feed (a future date, a duplicate GUID,
   no title) are recorded as the feed's errors.
3. **Store** each feed in one transaction: its new items, new stories and source counts,
   its poll state, and a ``news_events`` row for each new story at or above the impact
   threshold (its action and window from :func:`shared.domain.news.calendar.news_action`).
   Nothing of a feed is half-written.
4. **Calendar**: the scheduled events of the next ``horizon`` (RBI policy, budgets, FOMC,
   US CPI from ``shared/data/event_calendar.csv`` and ``QS_EVENT_CALENDAR``; the NSE expiry
   days) are stored with their action (the production event-impact model's, else the
   documented rule table) once each (``dedup_key``).
5. **Publish** every unpublished ``news_events`` row as ``news.event`` (the table is the
   outbox) and stamp it.

risk_check's news wall reads ``news_events`` directly (the events near ``now``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.adapters.bus import Bus
from shared.adapters.db import Database
from shared.adapters.feeds_http import FeedConfig, FeedFetcher, FetchResult
from shared.adapters.news_store import (
    EventRow,
    feed_states,
    insert_events,
    known_stories,
    mark_events_published,
    record_feed_error,
    save_feed_poll,
    signed64,
    stored_item_keys,
    unpublished_events,
)
from shared.domain.news.calendar import CalendarEvent, gate_events, news_action
from shared.domain.news.items import FeedRejected, ParsedFeed
from shared.runtime import Outcome, Runtime, ScheduledRun

logger = logging.getLogger(__name__)

# A story seen within this is matched by later items. Short enough that a headline
# template repeated every day (a market wrap) starts a new story the next day.
STORY_MEMORY = timedelta(hours=36)


@dataclass
class FeedOutcome:
    feed: str
    status: str
    items: int = 0
    new_items: int = 0
    new_stories: int = 0
    events: int = 0
    rejected: int = 0
    error: str | None = None


@dataclass
class RunTotals:
    feeds: list[FeedOutcome] = field(default_factory=list)
    scheduled_events: int = 0
    published: int = 0


def load_feeds(settings: Any) -> tuple[list[FeedConfig], set[str]]:
    """The feeds to poll and the allowlisted hosts (packaged list, then settings)."""
    from importlib import resources

    import yaml

    doc = yaml.safe_load(resources.files("shared").joinpath("data/news_feeds.yaml")
                         .read_text(encoding="utf-8"))
    feeds = settings.news_feeds if settings.news_feeds is not None else doc["feeds"]
    hosts = set(doc.get("allowed_hosts", ())) | set(settings.news_allowed_hosts)
    return [FeedConfig(name=str(f["name"]), url=str(f["url"])) for f in feeds], hosts


def calendar_events(extra_path: str | None) -> tuple[CalendarEvent, ...]:
    """The packaged scheduled-event calendar, plus an operator's extra file."""
    from importlib import resources

    from shared.domain.news.calendar import parse_calendar

    packaged = resources.files("shared").joinpath("data/event_calendar.csv")
    events = parse_calendar(packaged.read_text(encoding="utf-8"),
                            source_name="shared/data/event_calendar.csv") \
        if packaged.is_file() else ()
    if extra_path:
        from pathlib import Path

        events = (*events, *parse_calendar(Path(extra_path).read_text(encoding="utf-8"),
                                           source_name=extra_path))
    return tuple(events)


class NewsIngestService:
    """One scheduler firing of news_ingest (see the module docstring)."""

    def __init__(self, *, db: Database, bus: Bus, fetcher: FeedFetcher,
                 feeds: Sequence[FeedConfig], calendar: Callable[[], Sequence[CalendarEvent]],
                 expiries: Callable[[datetime, datetime], Sequence[CalendarEvent]],
                 threshold: float = 0.6, budget_s: float = 60.0,
                 horizon: timedelta = timedelta(days=14),
                 event_model: Callable[[], tuple[Any, float] | None] | None = None) -> None:
        self._db = db
        self._bus = bus
        self._fetcher = fetcher
        self._feeds = list(feeds)
        self._calendar = calendar
        self._expiries = expiries
        self._threshold = threshold
        self._budget = budget_s
        self._horizon = horizon
        self._event_model = event_model

    @classmethod
    def from_runtime(cls, rt: Runtime) -> NewsIngestService:
        from shared.rules import default_calendar

        settings = rt.settings
        feeds, hosts = load_feeds(settings)
        market = default_calendar()
        extra = settings.event_calendar

        def expiries(start: datetime, end: datetime) -> list[CalendarEvent]:
            from shared.domain.news.calendar import expiry_events

            out = []
            for symbol in ("NIFTY", "BANKNIFTY"):
                try:
                    found = market.expiries(symbol, start.date(), end.date())
                except Exception as exc:  # noqa: BLE001 - outside the calendar's data: none
                    logger.warning("no %s expiries for %s..%s: %s", symbol, start.date(),
                                   end.date(), exc)
                    continue
                out += expiry_events((symbol, e.date, market.expiry_close(e)) for e in found)
            return out

        from shared.adapters.blobs import UrlBlobReader
        from shared.adapters.registry import ModelRegistry, NoProductionModel, ProductionModels
        from shared.domain.models.trainers import event_fit_from_bytes

        models = ProductionModels(ModelRegistry(rt.database, UrlBlobReader(
            emulator_host=settings.storage_emulator_host), settings.models_bucket),
            event_fit_from_bytes)

        def event_model() -> tuple[Any, float] | None:
            """The production event-impact model and today's pre-event vol (NIFTY's ATM
            IV), or None when either is missing (the rule table then decides)."""
            try:
                _, fit = models.get("event_impact")
            except NoProductionModel:
                return None
            with rt.database.system() as s:
                vol = s.execute(
                    "SELECT a.atm_iv FROM chain_snapshots c JOIN chain_expiry_analytics a "
                    "USING (snapshot_id) WHERE c.symbol = 'NIFTY' AND c.published_at IS NOT "
                    "NULL AND NOT c.bad_chain AND a.t * 365 >= 2 AND a.atm_iv > 0 "
                    "ORDER BY c.asof DESC, a.t LIMIT 1").scalar()
            return None if vol is None else (fit, float(vol))

        return cls(db=rt.database, bus=rt.bus, fetcher=FeedFetcher(hosts), feeds=feeds,
                   calendar=lambda: calendar_events(extra), expiries=expiries,
                   threshold=settings.news_impact_threshold, event_model=event_model)

    # ------------------------------------------------------------------------------------
    def __call__(self, run: ScheduledRun, now: datetime) -> Outcome:
        clock = run.scheduled_for  # the market clock: a replay polls its own time
        totals = RunTotals()
        for result in self._fetch_all():
            try:
                totals.feeds.append(self.ingest(result, clock))
            except Exception as exc:  # noqa: BLE001 - one feed never stops the run
                logger.exception("feed %s: ingest failed", result.feed.name)
                self._error(result.feed, "ingest_failed", f"{type(exc).__name__}: {exc}", clock)
                totals.feeds.append(FeedOutcome(result.feed.name, "error", error=str(exc)))
        totals.scheduled_events = self.refresh_calendar(clock)
        totals.published = self.publish_pending()
        errors = [f for f in totals.feeds if f.status == "error"]
        for f in errors:
            logger.warning("feed %s: %s", f.feed, f.error)
        return Outcome.done(
            feeds=len(totals.feeds), feed_errors=len(errors),
            new_items=sum(f.new_items for f in totals.feeds),
            new_stories=sum(f.new_stories for f in totals.feeds),
            news_events=sum(f.events for f in totals.feeds),
            scheduled_events=totals.scheduled_events, published=totals.published,
            by_feed={f.feed: f.status for f in totals.feeds})

    def _fetch_all(self) -> list[FetchResult]:
        """Every feed, concurrently, within the time budget (late ones are errors)."""
        if not self._feeds:
            return []
        with self._db.system() as s:
            states = feed_states(s)
        pool = ThreadPoolExecutor(max_workers=min(8, len(self._feeds)),
                                  thread_name_prefix="feed")
        try:
            futures = {f.name: pool.submit(self._fetcher.fetch, f,
                                           etag=states.get(f.name, (None, None, ""))[0],
                                           last_modified=states.get(f.name, (None, None, ""))[1])
                       for f in self._feeds}
            wait(futures.values(), timeout=self._budget)
            out = []
            for f in self._feeds:
                fut = futures[f.name]
                if not fut.done():
                    out.append(FetchResult(f, "error", error_code="budget_exceeded",
                                           error=f"not fetched within the {self._budget:g} s "
                                                 "budget"))
                elif fut.exception() is not None:
                    out.append(FetchResult(f, "error", error_code="fetch_failed",
                                           error=repr(fut.exception())))
                else:
                    out.append(fut.result())
            return out
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------------------------
    def ingest(self, result: FetchResult, now: datetime) -> FeedOutcome:
        """Parse, dedup, classify and store one fetched feed, in one transaction."""
        from shared.domain.news.feeds import parse_feed

        feed = result.feed
        if result.status == "not_modified":
            with self._db.system() as s:
                save_feed_poll(s, feed.name, feed.url, now=now, status="not_modified",
                               keep_validators=True)
            return FeedOutcome(feed.name, "not_modified")
        if result.status == "error":
            self._error(feed, result.error_code or "fetch_failed", result.error or "", now)
            return FeedOutcome(feed.name, "error", error=result.error)
        try:
            parsed = parse_feed(result.body, source=feed.name, now=now,
                                content_type=result.content_type)
        except FeedRejected as exc:
            self._error(feed, exc.reason_code, exc.reason, now,
                        {"bytes": len(result.body), "content_type": result.content_type})
            return FeedOutcome(feed.name, "error", error=f"{exc.reason_code}: {exc.reason}")
        out = self._store(feed, parsed, result, now)
        return out

    def _error(self, feed: FeedConfig, code: str, reason: str, now: datetime,
               detail: dict[str, Any] | None = None) -> None:
        with self._db.system() as s:
            record_feed_error(s, feed.name, feed.url, code, reason, now, detail)

    def _store(self, feed: FeedConfig, parsed: ParsedFeed, result: FetchResult,
               now: datetime) -> FeedOutcome:
        from shared.domain.news.classify import classify
        from shared.domain.news.dedup import StoryIndex, item_key, normalize_url, title_fingerprint

        out = FeedOutcome(feed.name, "ok", items=len(parsed.items),
                          rejected=len(parsed.rejected))
        events: list[EventRow] = []
        with self._db.system() as s:
            keys = [item_key(i) for i in parsed.items]
            seen = stored_item_keys(s, keys)
            index = StoryIndex(known_stories(s, now - STORY_MEMORY))
            for item, key in zip(parsed.items, keys, strict=True):
                if key in seen:
                    continue
                seen.add(key)
                story_id, new = index.assign(item)
                if new:
                    c = classify(item.title, item.summary)
                    s.execute(
                        "INSERT INTO news_stories (story_id, fingerprint, title, published_at, "
                        "first_seen_at, event_type, symbols, sectors, sentiment, impact, why, "
                        "ruleset) VALUES (:id, :fp, :t, :pub, :now, :type, "
                        "CAST(:sym AS text[]), CAST(:sec AS text[]), :sent, :imp, "
                        "CAST(:why AS jsonb), :rs)",
                        id=story_id, fp=signed64(title_fingerprint(item.title)),
                        t=item.title[:500], pub=item.published, now=now, type=c.event_type,
                        sym="{" + ",".join(c.symbols) + "}",
                        sec="{" + ",".join(c.sectors) + "}", sent=c.sentiment, imp=c.impact,
                        why=_json(list(c.why)), rs=c.ruleset)
                    out.new_stories += 1
                    if c.impact >= self._threshold:
                        action, window = news_action(c.impact)
                        events.append(EventRow(
                            dedup_key=f"news:{story_id}", kind="news", event_type=c.event_type,
                            title=item.title, occurs_at=item.published or now,
                            symbols=c.symbols, impact=c.impact, action=action,
                            window_minutes=window, source=f"{feed.name}: {item.link or ''}",
                            why=c.why))
                else:  # one more outlet, unless this feed already carried the story
                    s.execute("UPDATE news_stories SET sources = sources + 1 WHERE story_id = "
                              ":id AND NOT EXISTS (SELECT 1 FROM news_items WHERE story_id = :id "
                              "AND feed = :f)", id=story_id, f=feed.name)
                s.execute(
                    "INSERT INTO news_items (item_key, story_id, feed, guid, title, link, "
                    "normalized_url, published_at, fetched_at) VALUES (:k, :sid, :f, :g, :t, "
                    ":l, :nu, :pub, :now) ON CONFLICT (item_key) DO NOTHING",
                    k=key, sid=story_id, f=feed.name, g=item.guid, t=item.title[:500],
                    l=item.link, nu=normalize_url(item.link) if item.link else None,
                    pub=item.published, now=now)
                out.new_items += 1
            out.events = insert_events(s, events)
            for r in parsed.rejected:
                s.execute("INSERT INTO news_feed_errors (feed, reason_code, reason, detail, "
                          "occurred_at) VALUES (:f, :c, :r, CAST(:d AS jsonb), :t)",
                          f=feed.name, c=r.reason_code, r=r.reason[:2000],
                          d=_json({"guid": r.guid, "title": r.title[:300]}), t=now)
            save_feed_poll(s, feed.name, feed.url, now=now, status="ok", etag=result.etag,
                           last_modified=result.last_modified)
        return out

    # ------------------------------------------------------------------------------------
    def refresh_calendar(self, now: datetime) -> int:
        """Store the scheduled events of the next ``horizon`` (once each); returns the new."""
        start, end = now - timedelta(days=1), now + self._horizon
        events = (*self._calendar(), *self._expiries(start, end))
        model = self._event_model() if self._event_model is not None else None

        def model_action(event_type: str) -> Any:
            if model is None or event_type not in model[0].types:
                return None  # a type the model was not fitted on: the rule table
            return model[0].action(event_type, model[1])

        rows = [EventRow(dedup_key=g.event.key, kind="scheduled",
                         event_type=g.event.event_type, title=g.event.title,
                         occurs_at=g.event.occurs_at, symbols=g.event.symbols,
                         impact=g.impact, action=g.action, window_minutes=g.window_minutes,
                         source=g.event.source, why=(g.why,))
                for g in gate_events(events, start=start, end=end, model_action=model_action)]
        with self._db.system() as s:
            return insert_events(s, rows)

    def publish_pending(self) -> int:
        """Publish the unpublished events (all at once) and stamp them."""
        with self._db.system() as s:
            pending = unpublished_events(s)
            if not pending:
                return 0
            self._bus.publish_many(pending)  # a failure rolls back: the retry publishes
            mark_events_published(s, [e.event_id for e in pending])
        return len(pending)


def _json(value: Any) -> str:
    import json

    return json.dumps(value, default=str)
