"""Odds under the implied density rescaled by the forecast: identities (weights, martingale,
put-call parity), a lognormal density against closed-form Black-76 and the lognormal odds,
and a real chain's density against its own smile prices (Breeden-Litzenberger)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from shared.domain.black76 import black76_price
from shared.domain.decide.odds import density_odds, node_weights
from shared.domain.risk.odds import expiry_odds

F, T, SIGMA = 25_000.0, 30 / 365, 0.15
CHAIN = Path(__file__).resolve().parents[1] / "fixtures" / "chains" / \
    "nse_oc_NIFTY_2025-07-16_ethanelliott50_trim.json"


def lognormal_density(points: int = 4001, width: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """The exact lognormal pdf of S_T (mean F) on a uniform grid of +-width sd."""
    s = SIGMA * math.sqrt(T)
    grid = np.linspace(F * math.exp(-width * s), F * math.exp(width * s), points)
    z = (np.log(grid / F) + 0.5 * s * s) / s
    return grid, np.exp(-0.5 * z * z) / (grid * s * math.sqrt(2 * math.pi))


def b76(k: float, call: bool, sigma: float = SIGMA) -> float:
    return float(np.asarray(black76_price(F, k, T, 0.0, sigma, call)).reshape(-1)[0])


def test_weights_sum_to_one_and_the_forward_is_a_martingale():
    grid, pdf = lognormal_density()
    w = node_weights(grid, pdf)
    assert w.sum() == pytest.approx(1.0, abs=1e-15) and np.all(w >= 0)
    for scale in (0.5, 1.0, 1.7):
        odds = density_odds([1.0], [F], [True], 0.0, grid, pdf, forward=F, scale=scale)
        assert odds.mean == pytest.approx(F, rel=1e-12)


@pytest.mark.parametrize("scale", [0.6, 1.0, 1.4])
@pytest.mark.parametrize("strike", [22_000.0, 25_000.0, 27_500.0])
def test_put_call_parity_holds_under_the_adjusted_density(scale, strike):
    grid, pdf = lognormal_density()
    call = density_odds([1.0], [strike], [True], 0.0, grid, pdf, forward=F, scale=scale)
    put = density_odds([1.0], [strike], [False], 0.0, grid, pdf, forward=F, scale=scale)
    assert call.expected_payoff - put.expected_payoff == pytest.approx(F - strike, abs=1e-7)


@pytest.mark.parametrize("scale", [0.7, 1.0, 1.3])
def test_a_lognormal_density_reproduces_black76_at_the_scaled_vol(scale):
    grid, pdf = lognormal_density()
    for k, call in ((24_000.0, False), (25_000.0, True), (26_000.0, True)):
        got = density_odds([1.0], [k], [call], 0.0, grid, pdf, forward=F, scale=scale)
        assert got.expected_payoff == pytest.approx(b76(k, call, SIGMA * scale), rel=2e-3)


def test_a_condor_s_odds_match_the_lognormal_closed_form():
    grid, pdf = lognormal_density()
    units = np.array([-75.0, 75.0, -75.0, 75.0])
    strikes = np.array([25_800.0, 26_000.0, 24_200.0, 24_000.0])
    calls = np.array([True, True, False, False])
    premium = float(units @ [b76(k, c) for k, c in zip(strikes, calls, strict=True)]) + 500.0
    for scale in (0.8, 1.0, 1.25):
        got = density_odds(units, strikes, calls, premium, grid, pdf, forward=F, scale=scale)
        want = expiry_odds(units, strikes, calls, premium, forward=F, t=T, sigma=SIGMA * scale)
        assert got.win_probability == pytest.approx(want.win_probability, abs=2e-3)
        assert got.expected_payoff == pytest.approx(want.expected_payoff, abs=0.5)
    # selling premium: a narrower forecast raises the odds and the edge
    narrow = density_odds(units, strikes, calls, premium, grid, pdf, forward=F, scale=0.8)
    wide = density_odds(units, strikes, calls, premium, grid, pdf, forward=F, scale=1.25)
    assert narrow.win_probability > wide.win_probability
    assert narrow.expected_payoff > wide.expected_payoff


def test_a_real_chain_density_prices_options_like_its_smile():
    """Breeden-Litzenberger: E[(S-K)+] under the chain's density is the undiscounted call
    price of the smoothed smile (truncation and discretisation error only)."""
    from tests.builders import analysed_fixture

    _, a, _ = analysed_fixture(CHAIN, 0.065)
    # the expiry decide trades (2+ days out; a one-day density is truncated by its grid)
    ea = next(e for e in a.expiries
              if e.density is not None and e.smile is not None and e.t * 365 >= 2)
    d = ea.density
    for k in (ea.forward * 0.98, ea.forward, ea.forward * 1.02):
        vol = float(np.asarray(ea.smile.iv(np.log(k / ea.forward))).reshape(-1)[0])
        want = float(np.asarray(black76_price(ea.forward, k, ea.t, 0.0, vol, True)).reshape(-1)[0])
        got = density_odds([1.0], [k], [True], 0.0, d.grid, d.pdf, forward=ea.forward)
        assert got.expected_payoff == pytest.approx(want, rel=5e-3, abs=0.05)


def test_bad_inputs_are_refused():
    grid, pdf = lognormal_density(101)
    with pytest.raises(ValueError, match="scale"):
        density_odds([1.0], [F], [True], 0.0, grid, pdf, forward=F, scale=0.0)
    with pytest.raises(ValueError, match="forward"):
        density_odds([1.0], [F], [True], 0.0, grid, pdf, forward=-1.0)
    with pytest.raises(ValueError, match="non-negative"):
        node_weights(grid, -pdf)
    with pytest.raises(ValueError, match="no mass"):
        node_weights(grid, np.zeros_like(pdf))
