"""Layer 3 structure choice on real NSE chains: legs in the chain, liquid, whole lots; max
profit/loss against a brute-force payoff; breakevens; win probability against Monte Carlo;
proposals accepted by risk_check's validation."""

from __future__ import annotations

import math
import uuid
from pathlib import Path

import numpy as np
import pytest

from shared.contracts import OptionType, Side, Structure
from shared.domain.analytics import ChainAnalytics
from shared.domain.chain import ChainSnapshot
from shared.domain.decide.structures import (
    ChosenStructure,
    NoUsableExpiry,
    build_structure,
    choose_expiry,
    liquid,
    payoff_profile,
    to_proposal,
)
from shared.domain.risk.context import RiskContext
from shared.domain.risk.inputs import LegQuote, MarketView, TenantPolicy
from shared.domain.risk.validation import validate_proposal
from tests.builders import analysed_fixture

RATE = 0.065
TENANT = uuid.UUID("22222222-2222-4222-8222-222222222222")
TRIMMED = Path(__file__).resolve().parents[1] / "fixtures" / "chains"
FULL = Path("/work/shared/fixtures/nse_option_chain")
NAMES = ("BANKNIFTY_2022-03-28_lakk1", "NIFTY_2019-08-23_aadityatamrakar",
         "NIFTY_2022-03-24_lakk1", "NIFTY_2025-07-16_ethanelliott50")
CASES = [pytest.param(TRIMMED / f"nse_oc_{n}_trim.json", id=f"trim-{n}") for n in NAMES] + \
    [pytest.param(FULL / f"nse_oc_{n}.json", id=f"full-{n}") for n in NAMES]
BUILDABLE = [s for s in Structure if s != Structure.CUSTOM]


def _load(path: Path) -> tuple[ChainSnapshot, ChainAnalytics, dict]:
    return analysed_fixture(path, RATE, skip_if_absent=True)


def _market(snap: ChainSnapshot, a: ChainAnalytics, lots: dict) -> MarketView:
    quotes = []
    for i in range(snap.n_legs):
        e = snap.expiry[i].astype(object)
        if e not in lots or not math.isfinite(a.legs.forward[i]):
            continue
        quotes.append(LegQuote(
            expiry=e, strike=float(snap.strike[i]),
            option_type=OptionType.CE if snap.is_call[i] else OptionType.PE,
            bid=float(snap.bid[i]), ask=float(snap.ask[i]), iv=float(a.legs.iv[i]),
            forward=float(a.legs.forward[i]), t=float(a.legs.t[i]), lot_size=lots[e]))
    return MarketView(symbol=snap.symbol, asof=snap.asof, spot=snap.spot, quotes=tuple(quotes),
                      rate=RATE, source="nse", snapshot_id=uuid.UUID(int=7))


def _brute(c: ChosenStructure, spot: float) -> tuple[np.ndarray, np.ndarray]:
    u, k, call = c.arrays()
    x = np.unique(np.concatenate((np.linspace(0.0, 3 * spot, 300_001), k)))
    diff = x[:, None] - k[None, :]
    intrinsic = np.where(call[None, :], np.maximum(diff, 0), np.maximum(-diff, 0))
    return x, intrinsic @ u - c.net_premium


def _build(path: Path, structure: Structure, wing: float | None,
           **kw: object) -> tuple[ChainSnapshot, ChainAnalytics, dict, ChosenStructure]:
    snap, a, lots = _load(path)
    ea = choose_expiry(a, chain=snap)
    sd = 0.1 if "trim" in path.name else 1.0  # trimmed files keep 8 strikes near the money
    c = build_structure(structure, snap, a, expiry=ea.expiry, lots=2, short_distance_sd=sd,
                        wing=wing, lot_size=lots[ea.expiry], **kw)  # type: ignore[arg-type]
    return snap, a, lots, c


@pytest.mark.parametrize("wing", [None, 100.0], ids=["rule", "model"])
@pytest.mark.parametrize("structure", BUILDABLE, ids=lambda s: s.value)
@pytest.mark.parametrize("path", CASES)
def test_structure_on_real_chain(path: Path, structure: Structure, wing: float | None) -> None:
    snap, a, lots, c = _build(path, structure, wing)
    ok = liquid(snap)
    # legs exist in the chain, are liquid, and carry whole positive lots
    for leg in c.legs:
        m = (snap.for_expiry(c.expiry) & (snap.strike == leg.strike)
             & (snap.is_call == (leg.option_type == OptionType.CE)))
        assert m.sum() == 1, leg
        assert ok[m].all() and np.isfinite(a.legs.iv[m]).all()
        i = int(np.flatnonzero(m)[0])
        assert leg.price == pytest.approx((snap.bid[i] + snap.ask[i]) / 2, abs=0.005)
        assert isinstance(leg.lots, int) and leg.lots > 0
    # max profit / loss against a brute-force payoff (grid 0 .. 3 x spot) and tail slope
    x, v = _brute(c, snap.spot)
    u, _, call = c.arrays()
    slope = float(u[call].sum())
    tol = dict(rel=1e-9, abs=1e-6)
    if slope < 0:
        assert c.max_loss is None
    else:
        assert c.max_loss == pytest.approx(max(-v.min(), 0.0), **tol)
    if slope > 0:
        assert c.max_profit is None
    else:
        assert c.max_profit == pytest.approx(max(v.max(), 0.0), **tol)
    assert (c.max_loss is None) == (structure in (Structure.SHORT_STRADDLE,
                                                  Structure.SHORT_STRANGLE))
    # breakevens have payoff 0 and payoff points match the brute force
    scale = float(np.abs(u).sum()) * float(x.max())
    for b in c.breakevens:
        assert abs(float(np.interp(b, x, v))) <= 1e-9 * scale
    assert all(float(np.interp(s, x, v)) == pytest.approx(p, rel=1e-9, abs=1e-6)
               for s, p in c.payoff_points if s <= x.max())
    assert c.how["wing_source"] == ("rule" if wing is None else "wing_model")
    # win probability and expected edge against Monte Carlo under the same lognormal
    rng = np.random.default_rng(20240601)
    s = c.sigma * math.sqrt(c.t)
    st = c.forward * np.exp(-0.5 * s * s + s * rng.standard_normal(400_000))
    pay = np.interp(st, x, v, right=np.nan)
    far = np.isnan(pay)
    pay[far] = v[-1] + slope * (st[far] - x[-1])
    assert float((pay > 0).mean()) == pytest.approx(c.win_probability, abs=0.005)
    # the proposal passes risk_check's validation (shape, legs in market, lots, prices)
    p = to_proposal(c, tenant_id=TENANT, snapshot_id=uuid.UUID(int=7), symbol=snap.symbol,
                    regime="range", now=snap.asof, explanation={"strategy": "test"})
    ctx = RiskContext(now=snap.asof, tenant_id=TENANT, proposal=p,
                      market=_market(snap, a, lots), policy=TenantPolicy(capital=1e7),
                      regime="range")
    validate_proposal(ctx)
    assert p.explanation["structure"]["wing_source"] == c.how["wing_source"]
    assert p.explanation["strategy"] == "test"


@pytest.mark.parametrize("path", CASES)
def test_naked_singles(path: Path) -> None:
    _, _, _, put = _build(path, Structure.NAKED_SINGLE, None)
    (leg,) = put.legs
    assert leg.option_type == OptionType.PE and leg.side == Side.SELL
    units = leg.lots * put.lot_size
    assert put.max_loss == pytest.approx((leg.strike - leg.price) * units, rel=1e-12)
    assert put.max_profit == pytest.approx(leg.price * units, rel=1e-12)
    _, _, _, call = _build(path, Structure.NAKED_SINGLE, None, option_type=OptionType.CE)
    assert call.max_loss is None and call.legs[0].option_type == OptionType.CE
    _, _, _, bought = _build(path, Structure.NAKED_SINGLE, None, option_type=OptionType.CE,
                             side=Side.BUY)
    assert bought.max_profit is None
    assert bought.max_loss == pytest.approx(bought.net_premium, rel=1e-12)


@pytest.mark.parametrize("path", CASES[:1] + CASES[len(NAMES):len(NAMES) + 1])
def test_forecast_vol_moves_the_odds(path: Path) -> None:
    _, _, _, base = _build(path, Structure.IRON_CONDOR, 100.0)
    _, _, _, calm = _build(path, Structure.IRON_CONDOR, 100.0, forecast_vol=base.sigma / 2)
    assert calm.legs == base.legs and calm.how["vol_source"] == "forecast"
    assert calm.win_probability > base.win_probability
    assert calm.expected_gross_edge > base.expected_gross_edge


def test_choose_expiry_skips_near_and_unusable() -> None:
    snap, a, _ = _load(TRIMMED / "nse_oc_NIFTY_2025-07-16_ethanelliott50_trim.json")
    assert a.expiries[0].t * 365 < 2
    assert choose_expiry(a).expiry == a.expiries[1].expiry
    assert choose_expiry(a, min_days=0.5).expiry == a.expiries[0].expiry
    with pytest.raises(NoUsableExpiry, match="no usable expiry"):
        choose_expiry(a, min_days=10_000)
    with pytest.raises(NoUsableExpiry):
        choose_expiry(a, chain=snap, min_days=20)  # later expiries: a strike or two, no IV


def test_liquid_rules() -> None:
    snap, _, _ = _load(TRIMMED / "nse_oc_NIFTY_2022-03-24_lakk1_trim.json")
    ok = liquid(snap)
    assert not ok[~(snap.bid > 0) | ~(snap.ask > 0)].any()  # zero-bid / no-ask legs out
    assert ok.any()
    assert not liquid(snap, max_relative_spread=0.0).any()
    assert liquid(snap, min_oi=0.0).sum() >= ok.sum()
    assert not liquid(snap, min_oi=1e12)[np.isfinite(snap.oi)].any()


def test_payoff_profile_tails() -> None:
    # short call: unbounded loss; long call: unbounded profit; put spread: both bounded
    p = payoff_profile([-1.0], [100.0], [True], -5.0)
    assert p.max_loss is None and p.max_profit == 5.0 and p.slope_right == -1.0
    p = payoff_profile([1.0], [100.0], [True], 5.0)
    assert p.max_profit is None and p.max_loss == 5.0
    p = payoff_profile([-1.0, 1.0], [100.0, 90.0], [False, False], -3.0)
    assert p.max_profit == 3.0 and p.max_loss == 7.0


def test_bad_arguments() -> None:
    path = TRIMMED / "nse_oc_NIFTY_2025-07-16_ethanelliott50_trim.json"
    snap, a, lots = _load(path)
    e = choose_expiry(a).expiry
    kw = dict(expiry=e, short_distance_sd=0.1, wing=100.0, lot_size=75)
    with pytest.raises(ValueError, match="cannot build"):
        build_structure(Structure.CUSTOM, snap, a, lots=1, **kw)  # type: ignore[arg-type]
    for bad in (0, -1, True):
        with pytest.raises(ValueError, match="lots"):
            build_structure(Structure.IRON_CONDOR, snap, a, lots=bad, **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="wing"):
        build_structure(Structure.IRON_CONDOR, snap, a, lots=1,
                        **{**kw, "wing": -5.0})  # type: ignore[arg-type]
