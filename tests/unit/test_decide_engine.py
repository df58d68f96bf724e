"""The decide engine on real NSE chains: one-lot candidates priced as the castle prices them,
the arm filter, deterministic per-tenant decisions, sizing and scaling, the market view, the
no-trade paths, the explanation and the bandit's choice. Seeded; no I/O but the fixtures."""

from __future__ import annotations

import functools
import json
import math
import uuid
from pathlib import Path

import numpy as np
import pytest

from shared.contracts import OptionType, Side, Structure
from shared.domain.analytics import ChainAnalytics
from shared.domain.black76 import black76_price
from shared.domain.chain import ChainSnapshot
from shared.domain.decide.bandit import ThompsonBandit
from shared.domain.decide.combine import AxisConsensus, Consensus
from shared.domain.decide.engine import (
    DIRECTIONAL_ARMS,
    LONG_VOL_ARMS,
    SHORT_VOL_ARMS,
    DecisionEngine,
    EngineConfig,
    MarketDecision,
    SignalState,
    TenantDecision,
    TenantInputs,
    market_view_of,
    tenant_seed,
)
from shared.domain.decide.readings import Axis
from shared.domain.decide.sizing import RiskAppetite, SizingDecision, size_position
from shared.domain.decide.structures import ChosenStructure, choose_expiry, to_proposal
from shared.domain.risk.context import RiskContext
from shared.domain.risk.inputs import MarketView, Portfolio, TenantPolicy
from shared.domain.risk.position import PositionMath, position_math
from shared.domain.risk.validation import validate_proposal
from shared.domain.risk.walls import DEFAULT_REGIME_STRUCTURES
from tests.builders import analysed_fixture

RATE = 0.065
SNAP = uuid.UUID("0b6a3a52-5c4e-4d1e-9a57-3f2f5e1c7a01")
MODELS = {"vol_har_5d": 3, "direction_lgbm": 7}
TRIMMED = Path(__file__).resolve().parents[1] / "fixtures" / "chains"
FULL = Path("/work/shared/fixtures/nse_option_chain")
NAMES = ("BANKNIFTY_2022-03-28_lakk1", "NIFTY_2019-08-23_aadityatamrakar",
         "NIFTY_2022-03-24_lakk1", "NIFTY_2025-07-16_ethanelliott50")
CASES = [pytest.param(TRIMMED / f"nse_oc_{n}_trim.json", id=f"trim-{n}") for n in NAMES] + \
    [pytest.param(FULL / f"nse_oc_{n}.json", id=f"full-{n}") for n in NAMES]
ONE = TRIMMED / "nse_oc_NIFTY_2022-03-24_lakk1_trim.json"  # in-repo: never skipped
APPETITE = RiskAppetite(target_annual_vol=0.5, confidence_power=0.5)  # generous
# vol_mult: vol_forecast as a multiple of the ATM IV; drift: daily log drift of the closes;
# history "high": 250 past IVs around 1.5x today's (today's IV is cheap: low_vol regime).
SCENARIOS: dict[str, dict] = {
    "range": {},
    "up": dict(vol_mult=3.0, drift=0.01, p_up=0.75),
    "down": dict(vol_mult=0.2, drift=-0.01, p_up=0.25),
    "event_long": dict(vol_mult=3.0, event=True),
    "event_short": dict(vol_mult=0.2, event=True),
    "cheap_long": dict(vol_mult=3.0, history="high"),
    "cheap_short": dict(vol_mult=0.2, history="high"),
}


def _load(path: Path) -> tuple[ChainSnapshot, ChainAnalytics, dict]:
    return analysed_fixture(path, RATE, skip_if_absent=True)


def _engine(path: Path, **kw: float) -> DecisionEngine:
    sd = 0.1 if "trim" in path.name else 1.0  # trimmed files keep 8 strikes near the money
    return DecisionEngine(EngineConfig(short_distance_sd=sd, **kw))


@functools.cache
def _market(path: Path, scenario: str = "range"
            ) -> tuple[ChainSnapshot, ChainAnalytics, dict, MarketDecision]:
    snap, a, lots = _load(path)
    sc, iv, rng = SCENARIOS[scenario], choose_expiry(a, chain=snap).atm_iv, \
        np.random.default_rng(1234)
    kw: dict = {"event_ahead": sc.get("event", False), "models": MODELS}
    if "vol_mult" in sc:
        kw["vol_forecast"] = sc["vol_mult"] * iv
    if "drift" in sc:
        steps = sc["drift"] + 0.002 * rng.standard_normal(80)
        kw["closes_daily"] = list(20_000 * np.exp(np.cumsum(steps)))
    if "p_up" in sc:
        kw |= {"p_up": sc["p_up"], "p_up_confidence": 0.6}
    if sc.get("history") == "high":
        kw["iv_history"] = list(iv * (1.5 + 0.05 * rng.standard_normal(250)))
    m = _engine(path).market(snap, a, snapshot_id=SNAP, rate=RATE, lot_sizes=lots,
                             state=SignalState(), **kw)
    return snap, a, lots, m


def _tenant(i: int, capital: float = 5_000_000, bandit: ThompsonBandit | None = None,
            ) -> TenantInputs:
    return TenantInputs(uuid.UUID(int=1000 + i), TenantPolicy(capital=capital), APPETITE,
                        Portfolio(), bandit or ThompsonBandit())


def _size(m: MarketDecision, arm: Structure, t: TenantInputs) -> SizingDecision:
    """Layer 4 on the one-lot candidate, sized on its own axis' confidence."""
    c = m.candidates[arm]
    return size_position(
        per_lot_max_loss=c.per_lot_max_loss, per_lot_margin=c.per_lot_margin,
        per_lot_daily_risk=c.per_lot_daily_risk, confidence=m.confidence(c.axis),
        policy=t.policy, appetite=t.appetite, portfolio=t.portfolio, symbol=m.symbol,
        per_lot_premium_paid=c.per_lot_premium_paid, per_lot_tail_loss=c.per_lot_tail_loss,
        expiry=c.chosen.expiry, lot_size=c.chosen.lot_size)


def _check_ranking(m: MarketDecision, d: TenantDecision, t: TenantInputs) -> None:
    """The traded arm is the first of the bandit's ranking (its draws, best first) that
    sizes to a lot; those before it size to 0 and are recorded as passed."""
    b = d.explanation["bandit"]
    ranked = sorted(b["draws"], key=lambda a: -b["draws"][a])
    assert ranked[0] == b["sampled"] and set(ranked) == {s.value for s in m.candidates}
    k = ranked.index(d.structure.value)
    assert b["arm"] == d.structure.value and d.sizing == _size(m, d.structure, t)
    assert list(b["passed"]) == ranked[:k + (not d.proposed)]
    assert d.proposed or k == len(ranked) - 1
    assert all(_size(m, Structure(a), t).lots == 0 for a in b["passed"])
    assert d.explanation["sizing"]["lots"] == d.sizing.lots


def _leg_index(snap: ChainSnapshot, expiry, strike: float, option_type: OptionType) -> int:
    m = (snap.for_expiry(expiry) & (snap.strike == strike)
         & (snap.is_call == (option_type == OptionType.CE)))
    assert m.sum() == 1, (expiry, strike, option_type)
    return int(np.flatnonzero(m)[0])


def _worst_loss(c: ChosenStructure, prices: np.ndarray) -> float:
    """Brute force: worst expiry loss on a fine grid 0 .. 3 x max strike (plus the strikes)
    of ``sum units * intrinsic - sum units * prices``."""
    u, k, call = c.arrays()
    x = np.unique(np.concatenate((np.linspace(0.0, 3 * k.max(), 300_001), k)))
    diff = x[:, None] - k[None, :]
    v = np.where(call[None, :], np.maximum(diff, 0), np.maximum(-diff, 0)) @ u - u @ prices
    return max(-float(v.min()), 0.0)


def _daily(c: ChosenStructure, iv: np.ndarray, sigma: float) -> float:
    """The documented one-day one-SD P&L: reprice at F (1 +- sigma / sqrt(252))."""
    u, k, call = c.arrays()
    vals = [float(black76_price(np.full(k.shape, c.forward * (1 + s * sigma / math.sqrt(252))),
                                k, c.t, RATE, iv, call) @ u) for s in (0.0, -1.0, 1.0)]
    return max(abs(vals[1] - vals[0]), abs(vals[2] - vals[0]))


def _one_lot_math(snap: ChainSnapshot, c: ChosenStructure, view: MarketView) -> PositionMath:
    return position_math(to_proposal(c, tenant_id=uuid.UUID(int=0), snapshot_id=SNAP,
                                     symbol=snap.symbol, regime="", now=snap.asof,
                                     explanation={}), view)


@pytest.mark.parametrize("scenario", ["range", "up", "down"])
@pytest.mark.parametrize("path", CASES)
def test_candidates_on_real_chain(path: Path, scenario: str) -> None:
    snap, a, lots, m = _market(path, scenario)
    assert m.no_trade is None and m.candidates
    ea = choose_expiry(a, chain=snap)
    view = market_view_of(snap, a, rate=RATE, lot_sizes=lots, snapshot_id=SNAP)
    for arm, cand in m.candidates.items():
        c = cand.chosen
        assert (c.structure, c.expiry, c.lot_size) == (arm, ea.expiry, lots[ea.expiry])
        assert cand.axis == (Axis.DIRECTION if arm in DIRECTIONAL_ARMS else Axis.VOLATILITY)
        touch = []
        for leg in c.legs:
            i = _leg_index(snap, c.expiry, leg.strike, leg.option_type)
            assert snap.bid[i] > 0 and snap.ask[i] > 0 and isinstance(leg.lots, int)
            assert leg.price == pytest.approx((snap.bid[i] + snap.ask[i]) / 2, abs=0.005)
            touch.append(snap.ask[i] if leg.side == Side.BUY else snap.bid[i])
        assert [leg.lots for leg in c.legs] == ([1, 2, 1] if arm == Structure.BUTTERFLY
                                                else [1] * len(c.legs))
        pm = _one_lot_math(snap, c, view)  # exactly the castle's one-lot figures
        assert cand.per_lot_max_loss == pm.trade_max_loss
        assert cand.per_lot_margin == pm.margin and cand.per_lot_tail_loss == pm.tail_loss
        assert cand.per_lot_premium_paid == max(pm.net_premium, 0.0)
        assert pm.net_premium == pytest.approx(float(c.arrays()[0] @ touch), rel=1e-12)
        # brute force at the touch (the castle's prices) and at the mids (net_premium's)
        at_touch = _worst_loss(c, np.array(touch))
        at_mid = _worst_loss(c, np.array([leg.price for leg in c.legs]))
        if c.max_loss is None:  # short straddle/strangle: unbounded, the castle uses stress
            assert arm in (Structure.SHORT_STRADDLE, Structure.SHORT_STRANGLE)
            assert pm.max_loss_basis == "stress"
            assert cand.per_lot_max_loss == cand.per_lot_tail_loss > 0
            assert at_mid > cand.per_lot_max_loss  # the grid's far end loses more
        else:
            assert pm.max_loss_basis == "payoff"
            assert cand.per_lot_max_loss == pytest.approx(at_touch, rel=1e-9, abs=1e-6)
            assert cand.per_lot_max_loss >= at_mid - 1e-6
            assert c.max_loss == pytest.approx(at_mid, rel=1e-9, abs=1e-6)
        if scenario == "range":  # no forecast: the odds' sigma is the ATM IV
            assert c.sigma == ea.atm_iv
            assert cand.per_lot_daily_risk == pytest.approx(
                _daily(c, np.asarray(pm.iv), ea.atm_iv), rel=1e-9)
        assert cand.per_lot_daily_risk > 0


@pytest.mark.parametrize("path", CASES[:2] + CASES[len(NAMES) + 2:len(NAMES) + 3])
def test_arm_filter(path: Path) -> None:
    seen: set[Structure] = set()
    floor = EngineConfig().min_axis_confidence
    for name, sc in SCENARIOS.items():
        _, _, _, m = _market(path, name)
        assert m.regime is not None and m.consensus is not None, name
        vol, dirn = m.consensus[Axis.VOLATILITY], m.consensus[Axis.DIRECTION]
        if "vol_mult" in sc:  # the forecast far from the ATM IV steers the consensus
            assert (vol.score > 0) == (sc["vol_mult"] > 1), (name, vol.score)
        assert (m.regime.label == "event") == sc.get("event", False)
        allowed = DEFAULT_REGIME_STRUCTURES[m.regime.label]
        expected = {s for s in allowed if (
            (s in DIRECTIONAL_ARMS and dirn.score != 0 and dirn.confidence > floor)
            or (s in SHORT_VOL_ARMS and vol.score <= 0 and vol.confidence > floor)
            or (s in LONG_VOL_ARMS and vol.score > 0 and vol.confidence > floor))}
        # offered: built, or refused only for want of usable strikes
        offered = set(m.candidates) | {Structure(k) for k, v in m.refused.items()
                                       if v.startswith("no usable strikes")}
        assert offered == expected, name
        assert not offered & (SHORT_VOL_ARMS if vol.score > 0 else LONG_VOL_ARMS), name
        assert offered <= allowed and (dirn.score != 0 or not offered & DIRECTIONAL_ARMS)
        assert set(m.refused) == {s.value for s in Structure} - {"custom"} - \
            {s.value for s in m.candidates}
        bull = dirn.score > 0
        for arm, want in ((Structure.CREDIT_VERTICAL, "PE" if bull else "CE"),
                          (Structure.DEBIT_VERTICAL, "CE" if bull else "PE")):
            if arm in m.candidates:  # the side follows the direction's sign
                assert {leg.option_type for leg in m.candidates[arm].chosen.legs} == {want}
        seen |= set(m.candidates)
    # not vacuous: both kinds of volatility arm and a directional arm were built
    assert seen & LONG_VOL_ARMS and seen & SHORT_VOL_ARMS and seen & DIRECTIONAL_ARMS


VERT = {Structure.CREDIT_VERTICAL, Structure.DEBIT_VERTICAL}
LOW_VOL_SHORT = {Structure.IRON_CONDOR, Structure.BUTTERFLY}  # low_vol's short-vol arms


@pytest.mark.parametrize(("dirn", "vol", "want"), [  # (score, confidence) per axis
    ((0.0, 0.5), (-0.2, 0.5), LOW_VOL_SHORT), ((0.3, 0.02), (0.0, 0.03), LOW_VOL_SHORT),
    ((-0.3, 0.5), (0.2, 0.5), VERT | LONG_VOL_ARMS), ((0.3, 0.5), (0.2, 0.01), VERT)])
def test_arm_rules_on_a_given_consensus(dirn, vol, want) -> None:
    """Hand-made views (combine never yields a zero score with a confidence)."""
    axes = {ax: AxisConsensus(ax, sc, conf, conf, 1.0, 0.0, ())
            for ax, (sc, conf) in ((Axis.DIRECTION, dirn), (Axis.VOLATILITY, vol))}
    offered, refused = DecisionEngine()._arms("low_vol", Consensus("low_vol", axes, ()))
    assert offered == want
    assert set(refused) == {s.value for s in Structure} - {s.value for s in want} - {"custom"}


def test_for_tenant_is_deterministic() -> None:
    a = uuid.UUID("11111111-1111-4111-8111-111111111111")
    b = uuid.UUID("33333333-3333-4333-8333-333333333333")
    assert (tenant_seed(a, b), tenant_seed(b, a)) == (14044267863435052718, 8994420867892746867)
    _, _, _, m = _market(ONE)
    eng, sampled = _engine(ONE), set()
    for i in range(12):
        t = _tenant(i)
        first, again = eng.for_tenant(m, t), eng.for_tenant(m, t)
        stored = ThompsonBandit.from_json(t.bandit.to_json())  # a redelivery, reloaded state
        for d in (again, eng.for_tenant(m, _tenant(i, bandit=stored))):
            assert (d.structure, d.sizing, d.explanation) == \
                (first.structure, first.sizing, first.explanation)
            assert d.proposal == first.proposal and d.proposal.legs == first.proposal.legs
            assert d.proposal.proposal_id == first.proposal.proposal_id
        sampled.add(first.explanation["bandit"]["sampled"])
    assert len(sampled) > 1  # tenants draw from their own seeded generators


@pytest.mark.parametrize("scenario", ["range", "down", "cheap_long"])
@pytest.mark.parametrize("path", [ONE, CASES[len(NAMES) + 2].values[0]],
                         ids=["trim", "full"])
def test_sizing_scales_the_one_lot_candidate(path: Path, scenario: str) -> None:
    snap, a, lots, m = _market(path, scenario)
    view = market_view_of(snap, a, rate=RATE, lot_sizes=lots, snapshot_id=SNAP)
    eng, sizes, arms = _engine(path), [], set()
    for i in range(10):
        t = _tenant(i)
        d = eng.for_tenant(m, t)
        assert d.proposed and d.no_trade is None and d.sizing is not None
        _check_ranking(m, d, t)
        p, n, one = d.proposal, d.sizing.lots, m.candidates[d.structure].chosen
        sizes.append(n)
        arms.add(d.structure)
        assert n > 0 and p.structure == d.structure and p.lot_size == one.lot_size
        assert [(leg.strike, leg.option_type, leg.side, leg.lots) for leg in p.legs] == \
            [(leg.strike, leg.option_type, leg.side, n * leg.lots) for leg in one.legs]
        for got, per_lot in ((p.max_loss, one.max_loss), (p.max_profit, one.max_profit),
                             (p.expected_gross_edge, one.expected_gross_edge)):
            assert (got is None) == (per_lot is None)
            assert per_lot is None or got == pytest.approx(n * per_lot, rel=1e-6)
        assert p.win_probability == one.win_probability and p.regime == m.regime.label
        assert p.tenant_id == d.tenant_id and p.snapshot_id == SNAP
        ctx = RiskContext(now=snap.asof, tenant_id=d.tenant_id, proposal=p, market=view,
                          policy=t.policy, regime=m.regime.label)
        validate_proposal(ctx)
        # the castle sees n times the one-lot loss, inside the per-trade limit sizing used
        per_lot = m.candidates[d.structure].per_lot_max_loss
        assert ctx.position.trade_max_loss == pytest.approx(n * per_lot, rel=1e-9)
        assert ctx.position.trade_max_loss <= t.policy.max_loss_per_trade_pct * 5_000_000
    assert max(sizes) >= 2 and len(arms) > 1  # scaling and several arms were exercised


def test_tiny_capital_sizes_to_zero() -> None:
    _, _, _, m = _market(ONE)
    for i in range(4):
        t = _tenant(i, capital=1_000)
        d = _engine(ONE).for_tenant(m, t)
        assert not d.proposed and d.sizing is not None and d.sizing.lots == 0
        assert d.no_trade is not None and d.no_trade.reason_code == "sized_to_zero"
        _check_ranking(m, d, t)  # every candidate was tried and passed
        assert all(f"{s.value}: no trade" in d.no_trade.reason for s in m.candidates)
        assert {"sizing", "bandit"} <= set(d.explanation)
        assert d.explanation["no_trade"] == {"reason_code": "sized_to_zero",
                                             "reason": d.no_trade.reason}


@pytest.mark.parametrize("path", CASES)
def test_market_view_matches_the_chain(path: Path) -> None:
    snap, a, lots = _load(path)
    usable = np.isfinite(a.legs.forward) & np.isfinite(a.legs.t)
    with_lot = np.array([e in lots for e in snap.expiry.astype(object)])
    view = market_view_of(snap, a, rate=RATE, lot_sizes=lots, snapshot_id=SNAP)
    assert (view.symbol, view.spot, view.rate, view.snapshot_id) == \
        (snap.symbol, snap.spot, RATE, SNAP)
    assert len(view.quotes) == int((usable & with_lot).sum()) > 0
    for q in view.quotes:
        i = _leg_index(snap, q.expiry, q.strike, OptionType(q.option_type))
        np.testing.assert_array_equal([q.bid, q.ask, q.iv, q.forward, q.t],
                                      [snap.bid[i], snap.ask[i], a.legs.iv[i],
                                       a.legs.forward[i], a.legs.t[i]])
        assert q.lot_size == lots[q.expiry]
    only = choose_expiry(a, chain=snap).expiry  # an expiry without a lot size is skipped
    part = market_view_of(snap, a, rate=RATE, lot_sizes={only: lots[only]})
    assert {q.expiry for q in part.quotes} == {only}
    assert len(part.quotes) == int((usable & snap.for_expiry(only)).sum())
    assert market_view_of(snap, a, rate=RATE, lot_sizes={}).quotes == ()


def test_no_usable_expiry_stops_every_tenant() -> None:
    snap, a, lots = _load(ONE)
    eng = _engine(ONE, min_days=10_000)
    m = eng.market(snap, a, snapshot_id=SNAP, rate=RATE, lot_sizes=lots, state=SignalState(),
                   models=MODELS)
    assert m.no_trade is not None and m.no_trade.reason_code == "no_usable_expiry"
    assert "no usable expiry" in m.no_trade.reason
    assert m.regime is None and m.consensus is None and not m.candidates and not m.readings
    assert m.explanation["snapshot"]["spot"] == snap.spot
    for i in range(3):
        d = eng.for_tenant(m, _tenant(i))
        assert d.no_trade == m.no_trade and not d.proposed and d.structure is None
        assert d.explanation["no_trade"]["reason_code"] == "no_usable_expiry"
    # without the chosen expiry's lot size the market stage stops too
    ea = choose_expiry(a, chain=snap)
    m2 = _engine(ONE).market(snap, a, snapshot_id=SNAP, rate=RATE, state=SignalState(),
                             lot_sizes={e: n for e, n in lots.items() if e != ea.expiry})
    assert m2.no_trade is not None and m2.no_trade.reason_code == "no_lot_size"
    assert _engine(ONE).for_tenant(m2, _tenant(0)).no_trade == m2.no_trade


@pytest.mark.parametrize("scenario", ["range", "up", "cheap_short"])
def test_explanation_references_real_inputs(scenario: str) -> None:
    snap, a, _, m = _market(ONE, scenario)
    ea = choose_expiry(a, chain=snap)
    e = m.explanation
    assert e["snapshot"] == {"snapshot_id": str(SNAP), "asof": snap.asof.isoformat(),
                             "spot": snap.spot, "source": snap.source}
    assert e["expiry"] == {"expiry": ea.expiry.isoformat(), "t_years": ea.t,
                           "forward": ea.forward, "atm_iv": ea.atm_iv}
    assert e["models"] == sorted(MODELS) and e["model_versions"] == MODELS
    assert e["regime"]["label"] == m.regime.label
    readings = {r.name: r for r in m.readings}
    assert e["signals"]
    for s in e["signals"]:
        r = readings[s["name"]]
        assert r.available and s["inputs"] == dict(r.inputs)
        assert (s["score"], s["confidence"], s["axis"], s["reason"]) == \
            (r.score, r.confidence, r.axis.value, r.reason)
    for axis in Axis:
        mine = [abs(s["contribution"]) for s in e["signals"] if s["axis"] == axis.value]
        assert mine == sorted(mine, reverse=True) and len(mine) <= EngineConfig().top_signals
        assert e["consensus"][axis.value]["score"] == m.consensus[axis].score
    assert {x["name"] for x in e["excluded"]} == {r.name for r in m.readings
                                                  if not r.available}
    assert e["structures"]["offered"] == [s.value for s in m.candidates]
    json.dumps(dict(e), allow_nan=False)  # JSON-serialisable as documented
    d = _engine(ONE).for_tenant(m, _tenant(0))
    assert {k: d.explanation[k] for k in e} == dict(e)


@pytest.mark.parametrize("scenario", ["range", "cheap_long"])
def test_bandit_posterior_picks_the_favoured_arm(scenario: str) -> None:
    _, _, _, m = _market(ONE, scenario)
    assert len(m.candidates) >= 2
    eng, traded = _engine(ONE), 0
    for target in m.candidates:
        bandit = ThompsonBandit()
        for _ in range(200):  # a large reward for the target in the market's context
            bandit = bandit.update(m.regime.label, target, 5.0)
        fits = _size(m, target, _tenant(0)).trade
        traded += fits
        for i in range(5):
            t = _tenant(i, bandit=bandit)
            d = eng.for_tenant(m, t)
            b = d.explanation["bandit"]
            assert b["sampled"] == target.value and b["context"] == m.regime.label
            assert b["counts"][target.value] == 200 and b["probabilities"][target.value] > 0.99
            assert (d.structure == target) == fits  # traded unless it cannot hold a lot
            _check_ranking(m, d, t)
    assert traded >= 2


def test_daily_risk_uses_atm_iv_with_a_forecast() -> None:
    snap, a, lots, m = _market(ONE, "up")
    ea = choose_expiry(a, chain=snap)
    view = market_view_of(snap, a, rate=RATE, lot_sizes=lots)
    for cand in m.candidates.values():
        iv = np.asarray(_one_lot_math(snap, cand.chosen, view).iv)
        assert cand.per_lot_daily_risk == pytest.approx(_daily(cand.chosen, iv, ea.atm_iv),
                                                        rel=1e-9)
