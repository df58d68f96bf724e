"""Odds of a structure at expiry (``shared/domain/risk/odds.py``): closed forms, an
independent lognormal CDF and a seeded Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.domain.black76 import black76_price
from shared.domain.risk.odds import ExpiryOdds, expiry_odds

F, T, SIGMA = 24_050.0, 7 / 365, 0.14
S = SIGMA * math.sqrt(T)


def norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def lognormal_cdf(x: float, forward: float = F, s: float = S) -> float:
    """``P(S_T <= x)`` for ``S_T = F exp(-s^2/2 + s Z)``."""
    return norm_cdf((math.log(x / forward) + 0.5 * s * s) / s)


def payoff(x: np.ndarray, units, strikes, is_call, net_premium: float) -> np.ndarray:
    u, k, c = (np.asarray(a) for a in (units, strikes, is_call))
    diff = x[:, None] - k[None, :]
    return np.where(c, np.maximum(diff, 0.0), np.maximum(-diff, 0.0)) @ u - net_premium


def test_long_call_without_premium_wins_with_probability_n_d2():
    for k in (22_000.0, 23_900.0, 24_050.0, 24_400.0, 26_500.0):
        odds = expiry_odds(np.array([65.0]), np.array([k]), np.array([True]), 0.0,
                           forward=F, t=T, sigma=SIGMA)
        d2 = (math.log(F / k) - 0.5 * SIGMA**2 * T) / (SIGMA * math.sqrt(T))
        assert isinstance(odds, ExpiryOdds)
        assert odds.win_probability == pytest.approx(norm_cdf(d2), rel=1e-12, abs=1e-15)
        assert odds.breakevens == (k,)
        assert (odds.sigma, odds.forward, odds.t) == (SIGMA, F, T)


def test_short_straddle_wins_between_its_breakevens():
    k, lot = 24_050.0, 65.0
    call, put = (black76_price(F, k, T, 0.065, SIGMA, c)[0] for c in (True, False))
    credit = call + put
    odds = expiry_odds(np.array([-lot, -lot]), np.array([k, k]), np.array([True, False]),
                       -lot * credit, forward=F, t=T, sigma=SIGMA)
    lower, upper = k - credit, k + credit
    assert odds.breakevens == pytest.approx((lower, upper), rel=1e-14)
    expected = lognormal_cdf(upper) - lognormal_cdf(lower)
    assert odds.win_probability == pytest.approx(expected, rel=1e-12)
    assert 0.3 < odds.win_probability < 0.8


def test_zero_premium_long_call_expects_its_undiscounted_black76_price():
    k = 24_200.0
    odds = expiry_odds(np.array([1.0]), np.array([k]), np.array([True]), 0.0,
                       forward=F, t=T, sigma=SIGMA)
    d1 = (math.log(F / k) + 0.5 * SIGMA**2 * T) / (SIGMA * math.sqrt(T))
    reference = F * norm_cdf(d1) - k * norm_cdf(d1 - SIGMA * math.sqrt(T))
    assert odds.expected_payoff == pytest.approx(reference, rel=1e-12)
    assert odds.expected_payoff == black76_price(F, k, T, 0.0, SIGMA, True)[0]


def test_synthetic_forward_expects_f_minus_k():
    for k in (23_000.0, 24_050.0, 25_500.0):
        odds = expiry_odds(np.array([1.0, -1.0]), np.array([k, k]), np.array([True, False]),
                           0.0, forward=F, t=T, sigma=SIGMA)
        assert odds.expected_payoff == pytest.approx(F - k, abs=1e-9)
        # the payoff is S - K: it wins above K
        assert odds.breakevens == (k,)
        assert odds.win_probability == pytest.approx(1.0 - lognormal_cdf(k), rel=1e-12)


def test_touching_zero_is_not_a_breakeven():
    # long straddle, no premium: |S - K| > 0 everywhere but at K
    odds = expiry_odds(np.array([1.0, 1.0]), np.array([24_000.0, 24_000.0]),
                       np.array([True, False]), 0.0, forward=F, t=T, sigma=SIGMA)
    assert odds.breakevens == ()
    assert odds.win_probability == pytest.approx(1.0, abs=1e-15)


def test_iron_condor_breakevens_and_tails():
    # short 23700/24400, long 23500/24600 wings, credit 40 per unit
    units = np.array([-1.0, 1.0, -1.0, 1.0])
    strikes = np.array([24_400.0, 24_600.0, 23_700.0, 23_500.0])
    calls = np.array([True, True, False, False])
    odds = expiry_odds(units, strikes, calls, -40.0, forward=F, t=T, sigma=SIGMA)
    assert odds.breakevens == pytest.approx((23_660.0, 24_440.0), rel=1e-15)
    assert odds.win_probability == pytest.approx(
        lognormal_cdf(24_440.0) - lognormal_cdf(23_660.0), rel=1e-12)
    # a credit above the wing width wins everywhere; a debit that large nowhere
    assert expiry_odds(units, strikes, calls, -250.0, forward=F, t=T,
                       sigma=SIGMA).win_probability == 1.0
    assert expiry_odds(-units, strikes, calls, 250.0, forward=F, t=T,
                       sigma=SIGMA).win_probability == 0.0


def test_random_structures_agree_with_monte_carlo():
    rng = np.random.default_rng(1234)
    n_paths = 400_000
    for _ in range(12):
        n = int(rng.integers(1, 6))
        forward = float(rng.uniform(20_000, 50_000))
        t = float(rng.uniform(1, 60)) / 365
        sigma = float(rng.uniform(0.08, 0.35))
        s = sigma * math.sqrt(t)
        strikes = np.round(forward * np.exp(rng.normal(0, 1.2 * s, n)) / 50) * 50
        calls = rng.random(n) < 0.5
        units = rng.integers(1, 4, n) * 65.0 * rng.choice([-1.0, 1.0], n)
        fair = float(units @ black76_price(forward, strikes, t, 0.0, sigma, calls))
        premium = fair + float(rng.normal(0, 0.3)) * float(np.abs(units).sum()) * forward * s * 0.1
        odds = expiry_odds(units, strikes, calls, premium, forward=forward, t=t, sigma=sigma)

        z = rng.standard_normal(n_paths)
        pay = payoff(forward * np.exp(-0.5 * s * s + s * z), units, strikes, calls, premium)
        p_hat = float((pay > 0).mean())
        se = math.sqrt(max(odds.win_probability * (1 - odds.win_probability), 1e-12) / n_paths)
        assert abs(p_hat - odds.win_probability) < 4 * se + 1e-12
        assert abs(pay.mean() - odds.expected_payoff) < 4 * pay.std() / math.sqrt(n_paths)
        assert odds.expected_payoff == pytest.approx(fair - premium, rel=1e-12, abs=1e-6)

        # the breakevens are zeros where the payoff changes sign, ascending
        be = np.array(odds.breakevens)
        assert np.all(np.diff(be) > 0)
        scale = float(np.abs(units).sum()) * forward
        if be.size:
            assert np.abs(payoff(be, units, strikes, calls, premium)).max() < 1e-9 * scale
            h = 1e-6 * be
            left = payoff(be - h, units, strikes, calls, premium)
            right = payoff(be + h, units, strikes, calls, premium)
            assert np.all(np.sign(left) == -np.sign(right))


@pytest.mark.parametrize("kw, message", [
    (dict(t=0.0), "t must be > 0"),
    (dict(sigma=-0.1), "sigma must be > 0"),
    (dict(forward=0.0), "forward must be > 0"),
    (dict(forward=math.nan), "forward must be finite"),
    (dict(net_premium=math.inf), "net_premium must be finite"),
    (dict(units=np.array([1.0, 2.0])), "shapes"),
    (dict(units=np.array([[1.0]])), "shapes"),
    (dict(units=np.array([]), strikes=np.array([]), is_call=np.array([], bool)), "shapes"),
    (dict(units=np.array([math.nan])), "finite"),
    (dict(strikes=np.array([-5.0])), "positive"),
    (dict(is_call=np.array([1.0])), "boolean"),
])
def test_bad_inputs_are_rejected(kw, message):
    args = dict(units=np.array([1.0]), strikes=np.array([24_000.0]), is_call=np.array([True]),
                net_premium=0.0, forward=F, t=T, sigma=SIGMA) | kw
    with pytest.raises(ValueError, match=message):
        expiry_odds(args.pop("units"), args.pop("strikes"), args.pop("is_call"),
                    args.pop("net_premium"), **args)
