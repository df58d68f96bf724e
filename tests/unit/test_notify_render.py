"""notify's renderer: signal and event cards, and the payoff diagram (pure, deterministic)."""

from __future__ import annotations

import io
import json
import math
import struct
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from shared.contracts import (
    DecisionProposedV1,
    KillSwitchResetV1,
    KillSwitchTrippedV1,
    Leg,
    ModelPromotedV1,
    ModelRejectedV1,
    NotifyDeadV1,
    OptionType,
    ProbePingV1,
    Side,
    SignalApprovedV1,
    SignalBlockedV1,
    Structure,
    WallVerdict,
)
from shared.domain.decide.structures import payoff_profile
from shared.domain.notify.cards import Card
from shared.domain.notify.render import (
    ENTRY_TOLERANCE,
    IMAGE_SIZE,
    PAPER_NOTICE,
    PAPER_NOTICE_EVENT,
    TARGET_STOP_RULE,
    breakevens,
    payoff_at,
    payoff_curve,
    payoff_figure,
    payoff_png,
    render_event,
    render_signal,
    sized_lots,
)
from shared.domain.risk.castle import sized_lots as castle_sized_lots
from shared.domain.risk.odds import expiry_odds

ROOT = Path(__file__).resolve().parents[2]
TENANT = uuid.UUID("11111111-1111-4111-8111-111111111111")
OTHER = uuid.UUID("22222222-2222-4222-8222-222222222222")
PID = uuid.UUID("33333333-3333-4333-8333-333333333333")
VID = uuid.UUID("44444444-4444-4444-8444-444444444444")
EXPIRY = date(2026, 11, 24)
AT = datetime(2026, 11, 20, 6, 31, tzinfo=UTC)  # 12:01 IST
CE, PE, BUY, SELL = OptionType.CE, OptionType.PE, Side.BUY, Side.SELL
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

SIGNALS = [  # decide's explanation["signals"] items (see DecisionEngine._top)
    {"name": "iv_rich", "axis": "volatility", "contribution": 0.30, "reason": "IV 18% over RV"},
    {"name": "trend", "axis": "direction", "contribution": -0.50, "reason": "flat trend"},
    {"name": "pcr", "axis": "direction", "contribution": 0.10, "reason": "PCR 1.1"},
    {"name": "skew", "axis": "volatility", "contribution": 0.05, "reason": "put skew"},
    {"name": "broken", "contribution": float("nan"), "reason": "ignored"},
    "not a dict",
]


def units(legs, lot_size, lots=None):
    lots = lots or [leg.lots for leg in legs]
    u = [(1 if leg.side == BUY else -1) * n * lot_size for leg, n in zip(legs, lots, strict=True)]
    return (np.array(u, dtype=float), np.array([float(leg.strike) for leg in legs]),
            np.array([leg.option_type == CE for leg in legs]))


def proposal(structure: Structure, spec, *, lot_size: int = 75, explanation=None,
             regime: str = "range_low_vol", symbol: str = "NIFTY",
             tenant: uuid.UUID = TENANT) -> DecisionProposedV1:
    """A proposal with decide's payoff convention for its max profit and loss."""
    legs = tuple(Leg(expiry=EXPIRY, strike=Decimal(str(k)), option_type=t, side=s, lots=n,
                     price=Decimal(str(p))) for k, t, s, n, p in spec)
    u, k, c = units(legs, lot_size)
    net = float(np.sum(u * np.array([float(leg.price) for leg in legs])))
    prof = payoff_profile(u, k, c, net)
    expl = {"signals": SIGNALS, "regime": {"label": regime, "reason": "RV/IV 0.8, no trend"},
            "expiry": {"forward": 24010.0}} if explanation is None else explanation
    return DecisionProposedV1(
        proposal_id=PID, tenant_id=tenant, snapshot_id=uuid.UUID(int=7), symbol=symbol,
        structure=structure, legs=legs, lot_size=lot_size, max_profit=prof.max_profit,
        max_loss=prof.max_loss, expected_gross_edge=900.0, win_probability=0.62,
        regime=regime, explanation=expl, proposed_at=AT)


def condor(lots: int = 2, wing: int = 200, **kw) -> DecisionProposedV1:
    # credit per copy: 85.40 - 40.10 + 70.00 - 30.30 = 85.00 points
    return proposal(Structure.IRON_CONDOR, [
        (24500, CE, SELL, lots, 85.40), (24500 + wing, CE, BUY, lots, 40.10),
        (23500, PE, SELL, lots, 70.00), (23500 - wing, PE, BUY, lots, 30.30)], **kw)


def debit_vertical(width: int = 200, short_price: float = 80.0) -> DecisionProposedV1:
    return proposal(Structure.DEBIT_VERTICAL, [(24000, CE, BUY, 1, 150.0),
                                               (24000 + width, CE, SELL, 1, short_price)])


def butterfly() -> DecisionProposedV1:
    return proposal(Structure.BUTTERFLY, [(23900, CE, BUY, 1, 180.0), (24000, CE, SELL, 2, 120.0),
                                          (24100, CE, BUY, 1, 75.0)], lot_size=65)


def long_straddle() -> DecisionProposedV1:
    return proposal(Structure.LONG_STRADDLE, [(24000, CE, BUY, 1, 210.0),
                                              (24000, PE, BUY, 1, 190.0)])


def verdicts(blocked_at: str | None = None) -> tuple[WallVerdict, ...]:
    out = [WallVerdict(wall="global_halt", blocked=False, reason_code="switch_clear",
                       reason="not tripped"),
           WallVerdict(wall="news", blocked=False, reason_code="news_reduce_50",
                       reason="reduce_50: size x0.50 (1 of 2 unit(s))",
                       numbers={"size_multiplier": 0.5})]
    if blocked_at:
        out.append(WallVerdict(wall=blocked_at, blocked=True, reason_code="cost_ratio_high",
                               reason="cost_ratio 0.52 > 0.40 <script>alert(1)</script>",
                               numbers={"cost_ratio": 0.52}))
    return tuple(out)


def approved(*, dry_run: bool = True, m: float = 0.5, tenant: uuid.UUID = TENANT,
             net_ev: float = 400.0) -> SignalApprovedV1:
    return SignalApprovedV1(verdict_id=VID, proposal_id=PID, tenant_id=tenant, dry_run=dry_run,
                            verdicts=verdicts(), decided_at=AT, net_ev=net_ev,
                            total_costs=120.0, size_multiplier=m)


def blocked(*, dry_run: bool = True) -> SignalBlockedV1:
    return SignalBlockedV1(verdict_id=VID, proposal_id=PID, tenant_id=TENANT, dry_run=dry_run,
                           verdicts=verdicts("cost"), decided_at=AT, blocked_by="cost",
                           reason_code="cost_ratio_high",
                           reason="cost_ratio 0.52 > 0.40 <script>alert(1)</script>")


def brute_pnl(p: DecisionProposedV1, s: float, m: float = 1.0) -> float:
    """Leg by leg: sign * lots * lot_size * (intrinsic - price paid), lots floored at m."""
    total = 0.0
    for leg in p.legs:
        lots = int(leg.lots * m + 1e-9)
        k = float(leg.strike)
        intrinsic = max(s - k, 0.0) if leg.option_type == CE else max(k - s, 0.0)
        sign = 1 if leg.side == BUY else -1
        total += sign * lots * p.lot_size * (intrinsic - float(leg.price))
    return total


def all_cards() -> list[Card]:
    p = condor()
    return [render_signal(approved(), p, image=False), render_signal(blocked(), p),
            render_signal(approved(), None), render_signal(blocked(dry_run=False), None),
            *(render_event(e) for e in events()),
            *(render_event(e, dry_run=True) for e in events())]


def events():
    return [
        KillSwitchTrippedV1(switch="daily_loss", scope="tenant", scope_key=str(TENANT),
                            tenant_id=TENANT, reason="day P&L -2.1% < -2.0%", actor="auto",
                            at=AT),
        KillSwitchResetV1(switch="global_halt", scope="global", reason="all clear <ok>",
                          actor="ops@example.com", at=AT),
        ModelPromotedV1(model_type="vol_garch", model_version=4, metrics={"qlike": 0.1234567,
                        "mae": 0.02}, previous_model_version=3, at=AT),
        ModelRejectedV1(model_type="wing", model_version=2, tenant_id=TENANT,
                        metrics={"pnl_sharpe": -0.3}, reason="worse than v1 <by 12%>", at=AT),
        NotifyDeadV1(delivery_id=uuid.UUID(int=5), tenant_id=TENANT, channel="telegram",
                     source_event_id="evt-1", attempts=6, error="403 <b>bot was blocked</b>",
                     at=AT),
    ]


# ---------------------------------------------------------------------------- approved


def test_approved_card_has_the_trade_scaled_to_the_approved_size():
    p = condor(lots=2)
    card = render_signal(approved(m=0.5), p, tenant_name="Acme", image=False)
    assert card.kind == "signal.approved" and card.dry_run and card.image is None
    assert card.title == "PAPER · NIFTY iron condor approved (paper-trading signal)"
    text = card.text
    for line in ("SELL 1 lot 24500 CE @ 85.40 (2 proposed)", "BUY  1 lot 24700 CE @ 40.10",
                 "SELL 1 lot 23500 PE @ 70.00", "BUY  1 lot 23300 PE @ 30.30",
                 "Expiry 2026-11-24 · lot size 75 · size x0.50", "Tenant: Acme",
                 "Win probability 62.0 %", "Regime: range_low_vol (RV/IV 0.8, no trend)",
                 "Decided 2026-11-20 12:01 IST"):
        assert line in text, line
    d = card.data
    assert [leg["lots"] for leg in d["legs"]] == [1, 1, 1, 1]
    assert [leg["lots_proposed"] for leg in d["legs"]] == [2, 2, 2, 2]
    # entry: one copy's credit +- 5 %
    e = d["entry"]
    assert e["kind"] == "credit" and e["premium"] == pytest.approx(85.0)
    assert (e["zone_low"], e["zone_high"]) == (pytest.approx(80.75), pytest.approx(89.25))
    assert e["units"] == 75 and e["copies"] == 1
    assert "Entry: net credit 85.00 per copy (zone 80.75–89.25, ±5 %: take at least 80.75)" \
        in text
    # max profit and loss: the proposal's, halved (and what the sized payoff reaches)
    assert d["max_profit"] == pytest.approx(p.max_profit * 0.5) == pytest.approx(85 * 75)
    assert d["max_loss"] == pytest.approx(p.max_loss * 0.5) == pytest.approx(115 * 75)
    assert "Max profit ₹6,375.00 · max loss ₹8,625.00" in text
    # credit rule: target = buy back at half the credit, stop = buy back at twice it
    assert d["target"]["close_at"] == pytest.approx(42.5)
    assert d["target"]["pnl"] == pytest.approx(0.5 * d["max_profit"])
    assert d["stop"]["close_at"] == pytest.approx(170.0)
    assert d["stop"]["pnl"] == pytest.approx(-85 * 75)
    assert not d["target"]["capped"] and not d["stop"]["capped"]
    assert "Target: close at 42.50 (+₹3,187.50; buy back at 50% of the credit)" in text
    assert "Stop: close at 170.00 (-₹6,375.00; buy back at 2x the credit)" in text
    assert d["target_stop_rule"] == TARGET_STOP_RULE and "Target/stop rule" in card.html
    # net EV after costs is the signal's; gross is the proposal's edge at the size
    assert (d["net_ev"], d["total_costs"], d["expected_gross_edge"]) == (400.0, 120.0, 450.0)
    assert "Net EV after costs ₹400.00 (costs ₹120.00; gross ₹450.00)" in text
    assert d["breakevens"] == pytest.approx([23415.0, 24585.0])
    assert "Breakevens 23,415.00 / 24,585.00" in text
    assert "Checks passed: global_halt, news" in text


def test_top_reasons_are_the_largest_contributions_in_order():
    card = render_signal(approved(), condor(), image=False)
    assert [r["name"] for r in card.data["reasons"]] == ["trend", "iv_rich", "pcr"]
    lines = card.text.splitlines()
    i = lines.index("Top reasons:")
    assert lines[i + 1:i + 4] == ["  1. trend (direction) -0.500: flat trend",
                                  "  2. iv_rich (volatility) +0.300: IV 18% over RV",
                                  "  3. pcr (direction) +0.100: PCR 1.1"]
    assert "skew" not in card.text and "broken" not in card.text  # 4th; NaN skipped


def test_explanation_may_be_empty_or_malformed():
    for expl in ({}, {"signals": "x", "regime": "range", "expiry": [1]},
                 {"signals": [{"name": 3, "contribution": 1}, {"name": "a"}]}):
        card = render_signal(approved(), condor(explanation=expl), image=False)
        assert card.data["reasons"] == [] and "Top reasons" not in card.text
        assert "Regime: range_low_vol" in card.text
        json.dumps(card.data, allow_nan=False)


@pytest.mark.parametrize("lots", [(1, 1, 1, 1), (2, 2, 2, 2), (4, 4, 4, 4), (1, 2, 1),
                                  (3, 6, 3), (4, 4)])
@pytest.mark.parametrize("m", [1.0, 0.75, 0.5, 0.25, 2 / 3])
def test_lots_round_down_like_the_castle(lots, m):
    p = proposal(Structure.CUSTOM, [(24000 + 100 * i, CE, BUY if i % 2 else SELL, n, 10.0)
                                    for i, n in enumerate(lots)])
    assert sized_lots(p, m) == castle_sized_lots(p, m)


def test_debit_rule_and_the_caps_at_max_profit_and_loss():
    # debit 70, width 200: target = sell at 140 (+70 x 75), stop = sell at 35 (-35 x 75)
    d = render_signal(approved(m=1.0), debit_vertical(), image=False).data
    assert d["entry"]["kind"] == "debit" and d["entry"]["premium"] == pytest.approx(70.0)
    assert d["target"] == {"close_at": pytest.approx(140.0), "pnl": pytest.approx(70 * 75),
                           "rule": "sell at 2x the debit", "capped": False}
    assert d["stop"] == {"close_at": pytest.approx(35.0), "pnl": pytest.approx(-35 * 75),
                         "rule": "sell at 50% of the debit", "capped": False}
    # debit 60, width 100: the spread is worth at most 100, so the target caps there
    card = render_signal(approved(m=1.0), debit_vertical(width=100, short_price=90.0),
                         image=False)
    t = card.data["target"]
    assert t["capped"] and t["close_at"] == pytest.approx(100.0)
    assert t["pnl"] == pytest.approx(card.data["max_profit"]) == pytest.approx(40 * 75)
    assert "capped at max profit" in card.text
    assert "pay at most 63.00" in card.text
    # condor with 100-point wings: credit 85, max loss 15 a unit: the stop caps at 100
    card = render_signal(approved(m=1.0), condor(lots=1, wing=100), image=False)
    s = card.data["stop"]
    assert s["capped"] and s["close_at"] == pytest.approx(100.0)
    assert s["pnl"] == pytest.approx(-card.data["max_loss"]) == pytest.approx(-15 * 75)
    # unbounded max profit (long straddle): nothing to cap the target at
    d = render_signal(approved(m=1.0), long_straddle(), image=False).data
    assert d["max_profit"] is None and not d["target"]["capped"]
    assert d["target"]["close_at"] == pytest.approx(800.0)
    assert "Max profit unbounded" in render_signal(approved(m=1.0), long_straddle(),
                                                   image=False).text


def test_a_zero_premium_structure_has_no_target_or_stop():
    p = proposal(Structure.CUSTOM, [(24000, CE, BUY, 1, 50.0), (24100, CE, SELL, 1, 50.0)])
    card = render_signal(approved(m=1.0), p, image=False)
    assert card.data["entry"]["kind"] == "even"
    assert card.data["target"] is None and card.data["stop"] is None
    assert "no target or stop for a zero-premium structure" in card.text


def test_entry_is_per_copy_of_a_ratio_structure():
    # butterfly 1:2:1: 180 - 2 x 120 + 75 = 15 points debit per copy
    card = render_signal(approved(m=1.0), butterfly(), image=False)
    e = card.data["entry"]
    assert e["kind"] == "debit" and e["premium"] == pytest.approx(15.0) and e["units"] == 65
    assert e["zone_high"] == pytest.approx(15.0 * (1 + ENTRY_TOLERANCE))
    assert "SELL 2 lots 24000 CE @ 120.00" in card.text


def test_a_size_below_one_lot_is_flagged():
    card = render_signal(approved(m=0.5), condor(lots=1))  # the castle blocks this one
    assert "Warning: some legs round down to zero lots at this size" in card.text
    assert [leg["lots"] for leg in card.data["legs"]] == [0, 0, 0, 0]
    assert card.data["target"] is None and card.data["stop"] is None
    assert card.image is not None and card.image.startswith(PNG_SIGNATURE)


def test_approved_card_has_the_payoff_png_at_the_approved_size():
    p = condor(lots=2)
    card = render_signal(approved(m=0.5), p)
    assert card.image == payoff_png(p, size_multiplier=0.5)
    assert card.image != payoff_png(p)


# ---------------------------------------------------------------------------- blocked


def test_blocked_card_names_the_wall_and_the_reason():
    card = render_signal(blocked(), condor())
    assert card.kind == "signal.blocked" and card.image is None
    assert card.title == "PAPER · NIFTY iron condor blocked by cost (paper-trading signal)"
    assert ("Blocked by cost (cost_ratio_high): cost_ratio 0.52 > 0.40 "
            "<script>alert(1)</script>") in card.text
    assert "<b>Blocked by cost</b>" in card.html
    lines = card.text.splitlines()
    i = lines.index("Checks:")
    assert lines[i + 1:i + 4] == [
        "  global_halt: ok (switch_clear) not tripped",
        "  news: ok (news_reduce_50) reduce_50: size x0.50 (1 of 2 unit(s))",
        "  cost: BLOCKED (cost_ratio_high) cost_ratio 0.52 > 0.40 <script>alert(1)</script>"]
    d = card.data
    assert (d["blocked_by"], d["reason_code"]) == ("cost", "cost_ratio_high")
    assert [v["wall"] for v in d["verdicts"]] == ["global_halt", "news", "cost"]
    assert d["verdicts"][2]["blocked"] and d["verdicts"][2]["numbers"] == {"cost_ratio": 0.52}
    # the trade at the proposed size, the gross edge (no net EV: the cost wall blocked)
    assert "SELL 2 lots 24500 CE @ 85.40" in card.text
    assert "Expected gross edge ₹900.00 (before costs)" in card.text
    assert "Max profit ₹12,750.00 · max loss ₹17,250.00" in card.text
    assert "net_ev" not in d
    # nothing to enter: no entry zone, target or stop
    assert d["entry"] is d["target"] is d["stop"] is d["target_stop_rule"] is None
    assert "Entry" not in card.text and "Target" not in card.text and "Stop" not in card.text


def test_without_a_proposal_the_card_shows_what_the_signal_has():
    card = render_signal(approved(m=0.75), None)
    assert card.title == "PAPER · signal approved (paper-trading signal)"
    assert card.image is None
    assert "Size x0.75" in card.text and "Net EV after costs ₹400.00 (costs ₹120.00)" in card.text
    assert card.data["proposal_id"] == str(PID) and card.data["net_ev"] == 400.0
    card = render_signal(blocked(dry_run=False), None)
    assert card.title == "signal blocked by cost"
    assert "Blocked by cost (cost_ratio_high)" in card.text


def test_a_proposal_of_another_signal_or_tenant_is_refused():
    with pytest.raises(ValueError, match="not the signal's"):
        render_signal(approved(tenant=OTHER), condor())
    with pytest.raises(ValueError, match="not the signal's"):
        render_signal(blocked(), condor(tenant=OTHER))
    with pytest.raises(TypeError):
        render_signal(events()[0], None)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- paper, escaping


@pytest.mark.parametrize("make", [approved, blocked], ids=["approved", "blocked"])
@pytest.mark.parametrize("with_proposal", [True, False])
@pytest.mark.parametrize("dry_run", [True, False])
def test_paper_marker_iff_dry_run(make, with_proposal, dry_run):
    card = render_signal(make(dry_run=dry_run), condor() if with_proposal else None,
                         image=False)
    assert card.dry_run is dry_run and card.data["dry_run"] is dry_run
    for part in (card.title, card.text, card.html):
        assert ("paper-trading signal" in part.lower()) is dry_run
        assert ("PAPER" in part) is dry_run
    assert card.title.startswith("PAPER · ") is dry_run
    assert card.text.startswith(PAPER_NOTICE) is dry_run
    assert (card.data["paper_notice"] == PAPER_NOTICE) is dry_run


def test_html_escapes_every_value():
    expl = {"signals": [{"name": "<img src=x>", "contribution": 1.0,
                         "reason": "IV <script>alert(1)</script> & more"}],
            "regime": {"reason": "a < b"}}
    p = condor(explanation=expl, symbol="NIF<TY>", regime="<range>")
    for card in (render_signal(approved(), p, tenant_name="<b>Acme</b>", image=False),
                 render_signal(blocked(), p, tenant_name="<b>Acme</b>")):
        assert "<script>" not in card.html and "<img" not in card.html
        assert "<b>Acme" not in card.html and "NIF<TY>" not in card.html
        assert "&lt;script&gt;" in card.html and "&lt;b&gt;Acme&lt;/b&gt;" in card.html
        assert "NIF&lt;TY&gt;" in card.html and "&lt;range&gt;" in card.html
        assert "a &lt; b" in card.html
    # the plain text is not escaped (a channel with a parse mode escapes it)
    assert "IV <script>alert(1)</script> & more" in render_signal(approved(), p,
                                                                   image=False).text
    for card in (render_event(e) for e in events()):
        assert "<b>bot" not in card.html and "<ok>" not in card.html
        assert "<by 12%>" not in card.html


def test_card_data_is_plain_json():
    for card in all_cards():
        text = json.dumps(card.data, allow_nan=False)
        assert json.loads(text) == card.data
        assert card.data["kind"] == card.kind


# ---------------------------------------------------------------------------- payoff


@pytest.mark.parametrize(("make", "m"), [
    (condor, 1.0), (condor, 0.5), (lambda: condor(lots=4), 0.75), (debit_vertical, 1.0),
    (butterfly, 1.0), (long_straddle, 1.0)])
def test_payoff_matches_a_brute_force_computation(make, m):
    p = make()
    grid = np.linspace(0.0, 2 * max(float(leg.strike) for leg in p.legs), 2001)
    got = np.array(payoff_at(p, grid, size_multiplier=m))
    want = np.array([brute_pnl(p, s, m) for s in grid])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    # the plotted polyline is exact: linear interpolation of its points is the payoff
    curve = np.array(payoff_curve(p, size_multiplier=m))
    xs = np.linspace(curve[0, 0], curve[-1, 0], 997)
    np.testing.assert_allclose(np.interp(xs, curve[:, 0], curve[:, 1]),
                               [brute_pnl(p, s, m) for s in xs], rtol=0, atol=1e-6)
    # ... over all strikes +- 5 %, every strike and breakeven a point of it
    strikes = [float(leg.strike) for leg in p.legs]
    assert curve[0, 0] <= 0.95 * min(strikes) and curve[-1, 0] >= 1.05 * max(strikes)
    assert set(strikes) <= set(curve[:, 0])
    # breakevens are those of risk.odds, and the payoff changes sign across them
    sized = sized_lots(p, m)
    u, k, c = units(p.legs, p.lot_size, sized)
    net = float(np.sum(u * np.array([float(leg.price) for leg in p.legs])))
    bes = breakevens(p, size_multiplier=m)
    odds = expiry_odds(u, k, c, net, forward=24000.0, t=0.05, sigma=0.15)
    assert bes == pytest.approx(odds.breakevens)
    assert set(bes) <= set(curve[:, 0])
    for b in bes:
        assert brute_pnl(p, b, m) == pytest.approx(0.0, abs=1e-6)
        assert brute_pnl(p, b - 1, m) * brute_pnl(p, b + 1, m) < 0
    # extremes are decide's max profit and loss, scaled (where bounded)
    if p.max_profit is not None:
        assert curve[:, 1].max() == pytest.approx(p.max_profit * m)
    if p.max_loss is not None:
        assert -curve[:, 1].min() == pytest.approx(p.max_loss * m)


def test_figure_plots_the_payoff_curve():
    p = condor(lots=2)
    fig = payoff_figure(p, size_multiplier=0.5)
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.lines[0].get_xydata(),
                                  np.array(payoff_curve(p, size_multiplier=0.5)))
    # the zero line and the two breakevens
    assert any(np.all(np.asarray(line.get_ydata()) == 0) for line in ax.lines[1:])
    vlines = [line.get_xdata()[0] for line in ax.lines[1:] if line.get_linestyle() == ":"]
    assert vlines == pytest.approx([23415.0, 24585.0])
    assert ax.get_xlim() == pytest.approx((0.95 * 23300, 1.05 * 24700))


def test_png_has_the_signature_the_size_and_stable_bytes():
    from PIL import Image

    p = condor()
    png = payoff_png(p)
    assert png.startswith(PNG_SIGNATURE)
    assert png[12:16] == b"IHDR" and struct.unpack(">II", png[16:24]) == IMAGE_SIZE == (640, 360)
    with Image.open(io.BytesIO(png)) as img:
        assert img.size == (640, 360) and img.format == "PNG"
        assert "Software" not in img.info
        pixels = np.asarray(img.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10  # something was drawn
    assert payoff_png(p) == png  # deterministic
    for other in (butterfly(), long_straddle(), debit_vertical()):
        assert payoff_png(other).startswith(PNG_SIGNATURE)


def test_importing_the_renderer_does_not_import_matplotlib():
    code = ("import sys, shared.domain.notify.render; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('matplotlib', 'PIL', 'pandas', 'scipy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------- events


def test_kill_switch_cards():
    tripped, reset = events()[:2]
    card = render_event(tripped)
    assert card.kind == "killswitch.tripped" and card.image is None and not card.dry_run
    assert card.title == "Kill switch tripped: daily_loss (tenant)"
    assert f"Scope: tenant:{TENANT}" in card.text
    for s in ("Reason: day P&L -2.1% < -2.0%", "By: auto", "At: 2026-11-20 12:01 IST",
              f"tenant: {TENANT}", "blocked until it is reset"):
        assert s in card.text, s
    assert card.data["switch"] == "daily_loss" and card.data["scope_key"] == str(TENANT)
    card = render_event(reset)
    assert card.kind == "killswitch.reset"
    assert card.title == "Kill switch reset: global_halt (global)"
    assert "By: ops@example.com" in card.text and "tenant: all tenants" in card.text
    assert card.data["tenant_id"] is None and "all clear &lt;ok&gt;" in card.html


def test_model_cards():
    promoted, rejected = events()[2:4]
    card = render_event(promoted)
    assert card.kind == "model.promoted"
    assert card.title == "Model vol_garch v4 promoted (replaces v3)"
    assert "Metrics: mae 0.02, qlike 0.1235" in card.text and "Scope: global" in card.text
    assert card.data["metrics"] == {"qlike": 0.1234567, "mae": 0.02}
    assert card.data["previous_model_version"] == 3
    card = render_event(rejected)
    assert card.kind == "model.rejected"
    assert card.title == "Model wing v2 rejected: worse than v1 <by 12%>"
    assert "Reason: worse than v1 <by 12%>" in card.text and f"tenant {TENANT}" in card.text
    assert card.data["reason"] == "worse than v1 <by 12%>"


def test_dead_delivery_card_is_for_the_operator():
    card = render_event(events()[4])
    assert card.kind == "notify.dead" and not card.dry_run
    assert card.title == "Notification dead: telegram gave up after 6 attempts"
    for s in ("Channel: telegram", "Attempts: 6", "Error: 403 <b>bot was blocked</b>",
              "source event evt-1", f"Tenant: {TENANT}"):
        assert s in card.text, s
    assert "403 &lt;b&gt;bot was blocked&lt;/b&gt;" in card.html
    assert card.data["attempts"] == 6 and card.data["channel"] == "telegram"


def test_event_cards_say_paper_when_the_tenant_is_in_dry_run():
    for e in events():
        card = render_event(e, dry_run=True)
        assert card.dry_run and card.title.startswith("PAPER · ")
        assert card.text.startswith(PAPER_NOTICE_EVENT)
        assert "paper-trading signals" in card.html
        plain = render_event(e)
        assert "PAPER" not in plain.title + plain.text + plain.html
        assert "paper-trading" not in plain.text + plain.html


def test_render_event_passes_signals_on_and_refuses_the_rest():
    card = render_event(blocked())
    assert card.kind == "signal.blocked" and "Blocked by cost" in card.text
    with pytest.raises(TypeError, match="ProbePingV1"):
        render_event(ProbePingV1(probe_id=uuid.UUID(int=1), sent_at=AT))


def test_amounts_use_indian_grouping():
    card = render_signal(approved(m=1.0, net_ev=-1234567.5), condor(lots=20), image=False)
    assert "Net EV after costs -₹12,34,567.50" in card.text
    assert "Max profit ₹1,27,500.00" in card.text  # 85 x 75 x 20
    assert math.isclose(card.data["max_profit"], 127500.0)
