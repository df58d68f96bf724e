"""The daily digest card: counts, walls, the paper book, the paper notice; a quiet day is
empty (nothing is sent)."""

from __future__ import annotations

import json
from datetime import date

from shared.domain.notify.digest import PAPER, DayActivity, render_digest


def test_the_digest_counts_signals_walls_and_the_book():
    a = DayActivity(day=date(2026, 11, 20),
                    approved=(("NIFTY", "iron_condor", 1250.4), ("BANKNIFTY", "butterfly", 80.0)),
                    blocked_by=("cost", "news", "cost"), open_positions=3,
                    realized_pnl=-1520.0, dry_run=True)
    card = render_digest(a)
    assert card.kind == "daily.digest" and card.title.startswith("PAPER · ")
    assert "2 approved, 3 blocked" in card.title
    assert "Blocked by: cost 2, news 1" in card.text
    assert "NIFTY iron condor (net EV ₹1,250)" in card.text
    assert "3 open position(s); realised today ₹-1,520" in card.text
    assert PAPER in card.text and PAPER in card.html
    assert json.loads(json.dumps(card.data))["blocked_by"] == {"cost": 2, "news": 1}


def test_a_quiet_day_is_empty_and_live_tenants_get_no_paper_notice():
    assert DayActivity(day=date(2026, 11, 20)).empty
    live = render_digest(DayActivity(day=date(2026, 11, 20), open_positions=1, dry_run=False))
    assert not live.title.startswith("PAPER") and PAPER not in live.text
    assert "<script>" not in render_digest(DayActivity(
        day=date(2026, 11, 20), approved=(("<script>", "x", 1.0),))).html
