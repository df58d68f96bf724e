"""The session report page: sections, embedded plots, payoff numbers, escaping, empty states."""

from __future__ import annotations

import base64
import dataclasses
import html
import math
import re
import struct
import time
from datetime import UTC, date, datetime

import numpy as np
import pytest

from shared.report import html as report_html
from shared.report.html import (
    SECTIONS,
    drawdown,
    max_drawdown,
    payoff_at_expiry,
    payoff_extremes,
    render_html,
    write_report,
)
from shared.report.model import (
    ApprovedSignal,
    GateFiring,
    GexProfile,
    LegView,
    ModelUse,
    PnlPoint,
    SessionReport,
    SignalMark,
    SmileSnapshot,
    TenantPnl,
)
from tests.report_builders import build_session_report, empty_session_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="[^"]*" '
                 r'width="(\d+)" height="(\d+)">')
EXPIRY = date(2026, 3, 17)


@pytest.fixture(scope="module")
def report() -> SessionReport:
    return build_session_report()


@pytest.fixture(scope="module")
def page(report: SessionReport) -> str:
    return render_html(report)


def _sections(page: str) -> dict[str, str]:
    """Each section's HTML by id."""
    found = dict(re.findall(r'<section id="([a-z]+)">(.*?)</section>', page, flags=re.S))
    assert list(found) == [key for key, _ in SECTIONS]
    return found


def _rupees(text: str) -> float:
    """``₹12,34,567.50`` / ``-₹5.00`` as a float."""
    m = re.fullmatch(r"([+-]?)₹([\d,]+\.\d\d)", text.strip())
    assert m, text
    value = float(m.group(2).replace(",", ""))
    return -value if m.group(1) == "-" else value


def _brute_payoff(legs, lot_size: int, spots: np.ndarray) -> np.ndarray:
    """An independent payoff at expiry: rupees, whole position, before costs."""
    total = np.zeros_like(spots)
    for leg in legs:
        units = leg.lots * lot_size * (1 if leg.side == "BUY" else -1)
        for i, s in enumerate(spots):
            value = max(s - leg.strike, 0.0) if leg.option_type == "CE" else max(leg.strike - s,
                                                                                 0.0)
            total[i] += units * (value - leg.price)
    return total


def _leg(side: str, kind: str, strike: float, price: float, lots: int = 1) -> LegView:
    return LegView(side=side, option_type=kind, strike=strike, expiry=EXPIRY, lots=lots,
                   price=price)


CONDOR = (_leg("BUY", "PE", 21_900, 10.0), _leg("SELL", "PE", 22_000, 25.0),
          _leg("SELL", "CE", 22_600, 22.0), _leg("BUY", "CE", 22_700, 8.0))


# ---------------------------------------------------------------------------- the page


def test_every_section_has_its_heading(page):
    for key, heading in SECTIONS:
        assert f'<section id="{key}"><h2>{html.escape(heading)}</h2>' in page
    assert "<h2>Paper P&amp;L and drawdown</h2>" in page
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")


def test_every_plot_is_a_valid_png_data_uri(page):
    images = IMG.findall(page)
    # spot, 2 smiles (2 expiries), 2 GEX profiles, 5 payoffs, gate bars, 2 tenants' P&L
    assert len(images) == 13 == page.count("<img ")
    for data, width, height in images:
        png = base64.b64decode(data, validate=True)
        assert png[:8] == PNG_SIGNATURE
        assert png[12:16] == b"IHDR"
        w, h = struct.unpack(">II", png[16:24])
        assert (w, h) == (int(width), int(height))
        assert 300 <= w <= 1300 and 150 <= h <= 1000
        assert png.endswith(b"IEND\xaeB`\x82")


def test_page_is_self_contained(page):
    attrs = re.findall(r'\b(?:src|href)\s*=\s*["\']?([^"\'\s>]+)', page)
    assert attrs
    for value in attrs:
        assert value.startswith(("data:image/png;base64,", "#")), value[:60]
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//", page)
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and "@import" not in page and "url(" not in page
    # one inline script (the render probe), none loaded
    assert page.count("<script") == 1 and "<script>" in page


def test_content_needs_no_script(page):
    body = re.sub(r"<script>.*?</script>", "", page, flags=re.S)
    for text in ("Alpha Capital", "Beta Desk", "none in production", "news", "daily_loss",
                 "Net EV after costs", "09:47 IST"):
        assert text in body


def test_summary_tiles_show_counters_and_kill_switch(page, report):
    summary = _sections(page)["summary"]
    for key in ("snapshots", "proposals", "approvals", "blocks", "deliveries"):
        assert f'<div class="v">{report.counters[key]:,}</div>' in summary
        assert f'<div class="k">{key}</div>' in summary
    assert '<div class="v">clear</div>' in summary  # kill_switch_trips: 0


def test_kill_switch_tripped_is_flagged():
    r = dataclasses.replace(empty_session_report(), counters={"kill_switch_trips": 2})
    summary = _sections(render_html(r))["summary"]
    assert 'class="tile alert"' in summary and "tripped" in summary and "trips 2" in summary
    r = dataclasses.replace(empty_session_report(), notes=("Kill switch master tripped at "
                                                           "11:02 by ops",))
    assert "see notes" in _sections(render_html(r))["summary"]


def test_signals_marked_with_walls_by_tenant(page, report):
    spot = _sections(page)["spot"]
    assert spot.count("<img ") == 1
    for mark in report.signals:
        if mark.outcome == "blocked":
            assert f"<td>{mark.wall}</td>" in spot
    assert "✕ blocked" in spot and "▲ approved" in spot
    assert "without a trade" in spot


def test_times_are_shown_in_ist(page, report):
    assert "generated 2026-03-12 15:34 IST" in page
    sig = report.approved[0]
    utc = dataclasses.replace(sig, at=sig.at.astimezone(UTC))
    assert utc.at.hour == 4  # 09:47 IST is 04:17 UTC
    one = dataclasses.replace(empty_session_report(), approved=(utc,))
    assert "<b>09:47 IST</b>" in render_html(one)


def test_model_without_production_version(page):
    models = _sections(page)["models"]
    assert "none in production" in models
    assert "<td>v3</td>" in models
    assert "None" not in models


def test_strategy_stats_and_latencies(page):
    sections = _sections(page)
    assert "<th>PSR</th>" in sections["strategies"] and "0.830" in sections["strategies"]
    assert "<td>171.0</td>" in sections["latency"] and "<td>612.0</td>" in sections["latency"]


def test_gate_firings_table_and_chart(page, report):
    gates = _sections(page)["gates"]
    assert gates.count("<img ") == 1
    total = sum(f.blocked for f in report.gate_firings if f.wall == "news")
    assert re.search(rf"<td>news</td>.*?<td>{total}</td></tr>", gates, flags=re.S)
    assert "(+3 reduced)" in gates


def test_pnl_table_shows_max_drawdown(page, report):
    pnl = _sections(page)["pnl"]
    for p in report.pnl:
        values = [q.pnl for q in p.points]
        peak, worst = 0.0, 0.0
        for v in values:  # brute force
            peak = max(peak, v)
            worst = max(worst, peak - v)
        row = re.search(rf"<td>{re.escape(p.tenant)}</td>(.*?)</tr>", pnl, flags=re.S)
        assert row, p.tenant
        cells = re.findall(r"<td>(.*?)</td>", row.group(1))
        assert abs(_rupees(cells[4]) - worst) < 0.01  # mode, capital, P&L, %, max drawdown
        assert abs(_rupees(cells[2]) - values[-1]) < 0.01
        assert worst > 0  # both tenants have a drawdown


# ---------------------------------------------------------------------------- payoff numbers


def test_payoff_at_expiry_of_a_known_iron_condor():
    # credit 25 + 22 - 10 - 8 = 29 points; wings 100 wide; 65 units per lot
    spots = np.array([0.0, 21_800.0, 21_900.0, 21_950.0, 21_971.0, 22_000.0, 22_300.0,
                      22_600.0, 22_650.0, 22_700.0, 23_500.0])
    expected = 65 * np.array([-71.0, -71.0, -71.0, -21.0, 0.0, 29.0, 29.0, 29.0, -21.0, -71.0,
                              -71.0])
    assert np.allclose(payoff_at_expiry(CONDOR, 65, spots), expected)
    assert payoff_extremes(CONDOR, 65) == pytest.approx((29 * 65, 71 * 65))
    assert payoff_at_expiry(CONDOR, 65, 22_300.0).shape == ()


def test_payoff_extremes_unbounded_and_errors():
    naked_call = (_leg("SELL", "CE", 22_500, 80.0),)
    assert payoff_extremes(naked_call, 65) == (pytest.approx(80 * 65), None)
    long_call = (_leg("BUY", "CE", 22_500, 80.0),)
    assert payoff_extremes(long_call, 65) == (None, pytest.approx(80 * 65))
    with pytest.raises(ValueError, match="BUY or SELL"):
        payoff_at_expiry((_leg("HOLD", "CE", 22_500, 80.0),), 65, [22_000.0])


def test_cards_agree_with_a_brute_force_payoff(page, report):
    cards = re.findall(r'<article class="card">(.*?)</article>', page, flags=re.S)
    assert len(cards) == len(report.approved) == 5
    for sig, card in zip(sorted(report.approved, key=lambda s: s.at), cards, strict=True):
        strikes = [leg.strike for leg in sig.legs]
        grid = np.arange(0.0, 2 * max(strikes), 0.5)
        pnl = _brute_payoff(sig.legs, sig.lot_size, grid)
        shown = dict(re.findall(r"<tr><th>([^<]+)</th><td>(.*?)</td></tr>", card))
        assert abs(_rupees(shown["Max profit"]) - pnl.max()) < 1.0
        assert abs(_rupees(shown["Max loss"]) - (-pnl.min())) < 1.0
        assert "legs imply" not in card
        for be in (float(x.replace(",", "")) for x in shown["Breakevens"].split(" / ")):
            near = _brute_payoff(sig.legs, sig.lot_size, np.array([be - 0.5, be, be + 0.5]))
            assert abs(near[1]) < 1.0 and near[0] * near[2] < 0
        credit = -sum((1 if leg.side == "BUY" else -1) * leg.lots * sig.lot_size * leg.price
                      for leg in sig.legs)
        assert abs(_rupees(shown["Net premium"].removesuffix(" credit")) - credit) < 0.01
        assert abs(_rupees(re.sub(r"<[^>]+>", "", shown["Net EV after costs"])) - sig.net_ev) \
            < 0.01
        assert abs(_rupees(shown["Costs (round trip)"]) - sig.costs) < 0.01
        assert ("PAPER" in card) == sig.paper
        assert card.count("<img ") == 1
        for reason in sig.reasons:
            assert html.escape(reason) in card


def test_a_stated_max_loss_the_legs_contradict_is_flagged(report):
    sig = dataclasses.replace(report.approved[0], max_loss=report.approved[0].max_loss / 2)
    out = render_html(dataclasses.replace(empty_session_report(), approved=(sig,)))
    assert "legs imply" in out


def test_bad_legs_give_an_empty_state_not_an_exception(report):
    bad = dataclasses.replace(report.approved[0],
                              legs=(_leg("HOLD", "CE", 22_500, 80.0),))
    out = render_html(dataclasses.replace(empty_session_report(), approved=(bad,)))
    assert "nothing to show: payoff unavailable" in out and "<img " not in out


# ---------------------------------------------------------------------------- drawdown


def test_drawdown_of_a_known_series():
    assert max_drawdown([0, 100, 50, 120, 60]) == 60.0
    assert drawdown([0, 100, 50, 120, 60]).tolist() == [0, 0, 50, 0, 60]
    assert drawdown([-50, 20, -30]).tolist() == [50, 0, 50]  # the peak starts at 0
    assert max_drawdown([]) == 0.0 and max_drawdown([10, 20, 30]) == 0.0


# ---------------------------------------------------------------------------- escaping, empties


def test_text_is_escaped_everywhere(report):
    evil = "<script>alert(1)</script>"
    tenant = "Desk $1 & <b>"
    r = dataclasses.replace(
        report, title=f"{evil} title",
        signals=tuple(dataclasses.replace(s, tenant=evil) for s in report.signals),
        approved=tuple(dataclasses.replace(a, tenant=evil, reasons=(evil,))
                       for a in report.approved),
        gate_firings=tuple(dataclasses.replace(g, tenant=tenant, wall=evil)
                           for g in report.gate_firings),
        pnl=tuple(dataclasses.replace(p, tenant=tenant) for p in report.pnl[:1]),
        models=(ModelUse(evil, None, evil),), notes=(evil,))
    out = render_html(r)
    assert evil not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "Desk $1 &amp; &lt;b&gt;" in out
    assert out.count("<script") == 1  # the page's own probe only


def test_empty_report_renders_every_empty_state():
    out = render_html(empty_session_report())
    sections = _sections(out)
    for key, _ in SECTIONS:
        assert "nothing to show: " in sections[key], key
    assert "<img " not in out
    assert "data-rendered" not in out.split("<script>")[0]


def test_odd_values_do_not_break_the_page(recwarn):
    at = datetime(2026, 3, 12, 4, 0, tzinfo=UTC)
    r = dataclasses.replace(
        empty_session_report(),
        smiles=(SmileSnapshot(at, EXPIRY, math.nan, (22_000.0, 22_100.0),
                              (math.nan, math.nan)),
                SmileSnapshot(at, date(2026, 3, 24), 22_050.0, (22_000.0, 22_100.0, 22_200.0),
                              (0.13, math.nan, 0.12))),
        gex=(GexProfile(at, 22_050.0, (22_000.0,), (math.nan,), flip=math.nan),),
        pnl=(TenantPnl("t", 0.0, True, (PnlPoint(at, math.nan),)),
             TenantPnl("u", 1e6, False, (PnlPoint(at, -100.0),))),
        signals=(SignalMark(at, "t", None, "blocked", None),),
        gate_firings=(GateFiring("t", "news", 0, 0),),
        approved=(ApprovedSignal(at, "t", "NIFTY", "mystery", (), 65, 22_000.0, 0.0, 0.0,
                                 0.0, 0.0, True),))
    out = render_html(r)
    assert "nothing to show: no valid quotes for expiry 2026-03-17" in out
    assert "nothing to show: no P&amp;L points for t" in out
    assert out.count("<img ") == 2  # one smile, one P&L


def test_plot_caps_bound_rendering(report, monkeypatch):
    monkeypatch.setattr(report_html, "MAX_PAYOFF_DIAGRAMS", 2)
    many_gex = tuple(dataclasses.replace(report.gex[0], at=report.gex[0].at.replace(minute=m))
                     for m in range(0, 50, 5))
    r = dataclasses.replace(empty_session_report(), approved=report.approved[:4], gex=many_gex)
    out = render_html(r)
    gex = _sections(out)["gex"]
    assert gex.count("<img ") == report_html.MAX_GEX_PROFILES
    assert "6 more profiles not plotted" in gex
    approved = _sections(out)["approved"]
    assert approved.count("<img ") == 2
    assert approved.count("payoff diagram omitted") == 2


def test_write_report_and_render_time(report, tmp_path):
    start = time.perf_counter()
    path = write_report(report, tmp_path / "out" / "report.html")
    seconds = time.perf_counter() - start
    assert path == tmp_path / "out" / "report.html"
    assert path.read_text(encoding="utf-8").count("<img ") == 13
    # about 1.5-3 s on a laptop (13 plots); this bound only catches a runaway
    assert seconds < 15, f"rendering took {seconds:.1f} s"


def test_many_tenants_get_a_bounded_number_of_lanes(report):
    marks = tuple(dataclasses.replace(m, tenant=f"tenant {i % 11}")
                  for i, m in enumerate(report.signals))
    r = dataclasses.replace(empty_session_report(), spot_path=report.spot_path, signals=marks)
    spot = _sections(render_html(r))["spot"]
    assert f"Lanes for the first {report_html.MAX_LANES} of 11 tenants" in spot
    assert spot.count("<img ") == 1
