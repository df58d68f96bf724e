"""Serving the wing model in decide: the live wing is the model's best candidate on the
same features it was trained on, the iron condor is built with it, the explanation says so
and the proposal declares the model (so the model-staleness switch watches it)."""

from __future__ import annotations

import functools
import uuid

import numpy as np
import pytest

from shared.adapters.providers import parse_payload
from shared.adapters.providers.simulator import MarketSimulator
from shared.contracts import Structure
from shared.costs import default_cost_schedule
from shared.domain.analytics import analyse_chain
from shared.domain.decide.engine import DecisionEngine, SignalState
from shared.domain.decide.forecasts import wing_width
from shared.domain.decide.structures import choose_expiry
from shared.domain.models.wings import (
    WingModel,
    candidate_features,
    replay_condor_outcomes,
    sample_session_specs,
    simulate_sessions,
)
from shared.rules import default_calendar


@functools.cache
def _trained():
    cal = default_calendar()
    specs = sample_session_specs(np.random.default_rng(1234), 10, calendar=cal)
    sessions = simulate_sessions(specs, calendar=cal, simulator=MarketSimulator,
                                 parse=parse_payload)
    data = replay_condor_outcomes(sessions, schedule=default_cost_schedule())
    return sessions, WingModel(num_boost_round=40).fit(data.features, data.y)


def test_the_live_wing_is_the_model_s_best_candidate():
    sessions, fit = _trained()
    for s in sessions[:4]:
        got = wing_width(fit, s.entry, expiry=s.expiry, t_years=s.t_years,
                         lot_size=s.lot_size, rate=s.rate, previous_close=s.previous_close)
        cands = candidate_features(s.entry, expiry=s.expiry, t_years=s.t_years,
                                   lot_size=s.lot_size, rate=s.rate,
                                   previous_close=s.previous_close)
        assert got.value == fit.best_wing(cands.features).distance
        assert got.value in set(cands.features.distance.tolist())


def test_a_snapshot_without_candidates_says_why():
    sessions, fit = _trained()
    s = sessions[0]
    got = wing_width(fit, s.entry, expiry=s.expiry.replace(year=s.expiry.year + 5),
                     t_years=s.t_years, lot_size=s.lot_size, rate=s.rate)
    assert got.value is None and "not in the snapshot" in got.reason


def test_the_condor_is_built_with_the_model_s_wing_and_declares_the_model():
    sessions, fit = _trained()
    s = next(x for x in sessions if x.t_years * 365 >= 2)  # decide trades 2+ days out
    t = {s.expiry: s.t_years}
    lots = {s.expiry: s.lot_size}
    a = analyse_chain(s.entry, t_by_expiry=t, rate=s.rate, lot_size_by_expiry=lots)
    ea = choose_expiry(a, chain=s.entry)
    width = wing_width(fit, s.entry, expiry=ea.expiry, t_years=ea.t, lot_size=s.lot_size,
                       rate=s.rate, previous_close=s.previous_close).value
    assert width is not None

    def wing(arm, e):
        return width if arm == Structure.IRON_CONDOR else None

    m = DecisionEngine().market(
        s.entry, a, snapshot_id=uuid.uuid4(), rate=s.rate, lot_sizes=lots,
        state=SignalState(), vol_forecast=0.6 * ea.atm_iv,  # options rich: sell premium
        wing=wing, wing_model=("wing_select", 7), models={"vol_har_5d": 3})
    condor = m.candidates.get(Structure.IRON_CONDOR)
    if condor is None:
        pytest.fail(f"no condor offered: {m.no_trade} {dict(m.refused)}")
    how = condor.chosen.how
    assert how["wing_source"] == "wing_model" and how["wing_rule"] is None
    for side in ("CE", "PE"):
        assert how["wings"][side]["target_points"] == width
    # the other structures keep the documented rule
    assert all(c.chosen.how["wing_source"] == "rule" for arm, c in m.candidates.items()
               if arm != Structure.IRON_CONDOR and "wings" in c.chosen.how
               and c.chosen.how["wings"])
    assert m.models == {"vol_har_5d": 3, "wing_select": 7}
    assert m.explanation["models"] == ["vol_har_5d", "wing_select"]
