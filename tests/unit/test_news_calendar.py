"""The scheduled-event calendar (packaged data, parsing, the rule table, the event-impact
model's override) and the feed fetcher's allowlist."""

from __future__ import annotations

import socket
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from zoneinfo import ZoneInfo

import pytest

from shared.domain.news.calendar import (
    EVENT_RULES,
    CalendarEvent,
    expiry_events,
    gate_events,
    news_action,
    parse_calendar,
)

IST = ZoneInfo("Asia/Kolkata")


def test_the_packaged_calendar_is_sourced_dated_data():
    text = resources.files("shared").joinpath("data/event_calendar.csv").read_text("utf-8")
    events = parse_calendar(text)
    assert len(events) >= 30
    assert {e.event_type for e in events} <= set(EVENT_RULES)
    assert all(e.source and e.occurs_at.utcoffset() is not None for e in events)
    assert [e.occurs_at for e in events] == sorted(e.occurs_at for e in events)
    # RBI decisions are announced at 10:00 IST, the budget speech at 11:00 IST
    assert all(e.occurs_at.astimezone(IST).hour == 10 for e in events
               if e.event_type == "rbi_policy")
    budgets = [e for e in events if e.event_type == "union_budget"]
    assert [e.occurs_at.astimezone(IST).date() for e in budgets] == [date(2025, 2, 1),
                                                                      date(2026, 2, 1)]


def test_bad_rows_name_their_line():
    with pytest.raises(ValueError, match="header"):
        parse_calendar("when,what\n2025-01-01,x\n")
    with pytest.raises(ValueError, match="line 3"):
        parse_calendar("occurs_at,event_type,title,source\n"
                       "2025-04-09T10:00:00+05:30,rbi_policy,ok,src\n"
                       "2025-06-06T10:00:00,rbi_policy,no offset,src\n")


def test_the_rule_table_sets_action_and_window_and_the_model_overrides_the_action():
    at = datetime(2025, 4, 9, 10, 0, tzinfo=IST)
    events = [CalendarEvent(at, "rbi_policy", "RBI", "src"),
              CalendarEvent(at + timedelta(days=1), "fomc", "FOMC", "src"),
              CalendarEvent(at + timedelta(days=2), "unknown_kind", "?", "src"),
              CalendarEvent(at + timedelta(days=40), "union_budget", "late", "src")]
    got = gate_events(events, start=at - timedelta(days=1), end=at + timedelta(days=14))
    assert [(g.event.title, g.action, g.window_minutes) for g in got] == [
        ("RBI", "reduce_50", 90), ("FOMC", "reduce_25", 660)]  # no rule, out of range: out
    assert "rule table" in got[0].why
    model = gate_events(events, start=at - timedelta(days=1), end=at + timedelta(days=14),
                        model_action=lambda t: "blackout" if t == "rbi_policy" else None)
    assert [(g.action, g.window_minutes) for g in model] == [("blackout", 90),
                                                              ("reduce_25", 660)]
    assert "event-impact model" in model[0].why and "rule table" in model[1].why


def test_expiry_days_and_news_actions():
    close = datetime(2025, 4, 9, 15, 30, tzinfo=IST)
    (e,) = expiry_events([("NIFTY", date(2025, 4, 9), close)])
    assert e.symbols == ("NIFTY",) and e.event_type == "expiry_day" and e.occurs_at == close
    assert e.key != CalendarEvent(close, "expiry_day", e.title, e.source, ("BANKNIFTY",)).key
    assert [news_action(x) for x in (0.95, 0.8, 0.7, 0.6, 0.59, 0.0)] == [
        ("reduce_50", 60), ("reduce_50", 60), ("reduce_25", 60), ("reduce_25", 60),
        ("proceed", 0), ("proceed", 0)]
    with pytest.raises(ValueError, match="offset"):
        CalendarEvent(datetime(2025, 1, 1), "fomc", "naive", "src")


def _resolver(table):
    def resolve(host, port):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in table[host]]
    return resolve


def test_the_fetcher_refuses_hosts_off_the_allowlist_and_internal_addresses():
    from shared.adapters.feeds_http import FeedFetcher, FeedRefused

    fetcher = FeedFetcher(["news.example.com", "sneaky.example.com", "127.0.0.1"],
                          resolve=_resolver({"news.example.com": ["93.184.216.34"],
                                             "sneaky.example.com": ["10.0.0.7"],
                                             "127.0.0.1": ["127.0.0.1"]}))
    fetcher.check("https://news.example.com/rss")
    fetcher.check("http://127.0.0.1:8080/feed.xml")  # an explicitly allowlisted address
    for url, why in (("https://evil.example.org/rss", "allowlist"),
                     ("http://169.254.169.254/latest/meta-data", "allowlist"),
                     ("https://sneaky.example.com/rss", "internal"),
                     ("file:///etc/passwd", "http"), ("ftp://news.example.com/x", "http")):
        with pytest.raises(FeedRefused, match=why):
            fetcher.check(url)
    from shared.adapters.feeds_http import FeedConfig

    refused = fetcher.fetch(FeedConfig("x", "https://evil.example.org/rss"))
    assert (refused.status, refused.error_code) == ("error", "feed_refused")


def test_now_is_aware_in_every_event():
    assert all(e.occurs_at.tzinfo is not None for e in parse_calendar(
        "occurs_at,event_type,title,source\n2026-01-28T14:00:00-05:00,fomc,FOMC,fed\n"))
    assert datetime(2026, 1, 28, 19, 0, tzinfo=UTC) == parse_calendar(
        "occurs_at,event_type,title,source\n2026-01-28T14:00:00-05:00,fomc,FOMC,fed\n"
    )[0].occurs_at
