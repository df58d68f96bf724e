"""Layer 3: the contextual Thompson-sampling bandit over structures."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from shared.contracts import Structure
from shared.domain.decide.bandit import ArmChoice, ArmPosterior, ThompsonBandit
from shared.domain.risk.walls import DEFAULT_REGIME_STRUCTURES

S = Structure
ARMS = (S.IRON_CONDOR, S.SHORT_STRANGLE, S.CREDIT_VERTICAL, S.BUTTERFLY)
TRUE_MEAN = {S.IRON_CONDOR: 0.05, S.SHORT_STRANGLE: 0.20, S.CREDIT_VERTICAL: 0.0,
             S.BUTTERFLY: -0.10}


def train(bandit: ThompsonBandit, rng: np.random.Generator, steps: int,
          context: str = "range") -> tuple[ThompsonBandit, list[Structure]]:
    picks = []
    for _ in range(steps):
        arm = bandit.sample(context, rng, n_mc=50).arm
        picks.append(arm)
        bandit = bandit.update(context, arm, float(rng.normal(TRUE_MEAN[arm], 0.3)))
    return bandit, picks


def test_normal_gamma_update_matches_the_closed_form() -> None:
    rewards = np.random.default_rng(3).normal(0.1, 0.4, size=40)
    p = ArmPosterior(m=0.0, kappa=1.0, alpha=2.0, beta=0.1)
    for r in rewards:
        p = p.update(float(r))
    n, xbar = len(rewards), float(rewards.mean())
    ss = float(((rewards - xbar) ** 2).sum())
    assert p.n == n and p.kappa == pytest.approx(1.0 + n)
    assert p.m == pytest.approx(n * xbar / (1.0 + n))
    assert p.alpha == pytest.approx(2.0 + n / 2)
    assert p.beta == pytest.approx(0.1 + 0.5 * ss + 0.5 * n * xbar ** 2 / (1.0 + n))
    with pytest.raises(ValueError):
        p.update(math.nan)


def test_sample_is_deterministic_given_the_seed() -> None:
    b = ThompsonBandit(arms=ARMS).update("range", S.BUTTERFLY, 0.3)
    a1 = b.sample("range", np.random.default_rng(42))
    a2 = b.sample("range", np.random.default_rng(42))
    assert a1 == a2
    assert isinstance(a1, ArmChoice) and a1.context == "range"
    assert set(a1.draws) == set(a1.probabilities) == set(ARMS)
    assert a1.arm == max(a1.draws, key=a1.draws.__getitem__)
    assert sum(a1.probabilities.values()) == pytest.approx(1.0)
    assert a1.counts[S.BUTTERFLY] == 1 and a1.means[S.BUTTERFLY] == pytest.approx(0.15)


def test_exploration_remains_early() -> None:
    b, _ = train(ThompsonBandit(arms=ARMS), np.random.default_rng(5), 10)
    choice = b.sample("range", np.random.default_rng(6), n_mc=2000)
    assert all(p > 0.0 for p in choice.probabilities.values())
    fresh = ThompsonBandit(arms=ARMS).sample("range", np.random.default_rng(6))
    assert all(p == pytest.approx(0.25, abs=0.05) for p in fresh.probabilities.values())


def test_converges_to_the_best_arm() -> None:
    rng = np.random.default_rng(2024)
    b, picks = train(ThompsonBandit(arms=ARMS), rng, 500)
    best = S.SHORT_STRANGLE
    later = [b.sample("range", rng, n_mc=50).arm for _ in range(200)]
    assert sum(a == best for a in later) / len(later) > 0.8
    assert sum(a == best for a in picks[-100:]) / 100 > 0.8
    final = b.sample("range", rng)
    assert max(final.probabilities, key=final.probabilities.__getitem__) == best
    assert final.counts[best] > 250
    # every arm was tried
    assert all(final.counts[a] > 0 for a in ARMS)


def test_contexts_are_independent_and_update_is_immutable() -> None:
    b0 = ThompsonBandit(arms=ARMS)
    b1 = b0.update("range", S.IRON_CONDOR, 0.5)
    assert b0.posteriors == {}
    assert b1.posterior("range", S.IRON_CONDOR).n == 1
    assert b1.posterior("high_vol", S.IRON_CONDOR) == b1.prior
    with pytest.raises(ValueError):
        b1.update("range", S.LONG_STRADDLE, 0.1)  # not an arm
    with pytest.raises(ValueError):
        b1.update("range", S.IRON_CONDOR, math.inf)


def test_allowed_restricts_the_choice() -> None:
    b = ThompsonBandit()  # every structure
    allowed = DEFAULT_REGIME_STRUCTURES["high_vol"]
    rng = np.random.default_rng(9)
    for _ in range(50):
        ch = b.sample("high_vol", rng, allowed=allowed, n_mc=20)
        assert ch.arm in allowed and set(ch.draws) == set(allowed)
    with pytest.raises(ValueError):
        b.sample("crisis", rng, allowed=DEFAULT_REGIME_STRUCTURES["crisis"])
    with pytest.raises(ValueError):
        b.sample("range", rng, n_mc=0)


def test_json_round_trip_is_identical() -> None:
    b, _ = train(ThompsonBandit(arms=ARMS), np.random.default_rng(1), 60)
    b, _ = train(b, np.random.default_rng(2), 30, context="trending_up")
    raw = b.to_json()
    assert isinstance(raw, bytes)
    back = ThompsonBandit.from_json(raw)
    assert back == b
    assert back.to_json() == raw
    assert back.sample("range", np.random.default_rng(4)) == \
        b.sample("range", np.random.default_rng(4))
    assert json.loads(raw)["arms"] == [a.value for a in ARMS]
    assert ThompsonBandit.from_json(ThompsonBandit().to_json()) == ThompsonBandit()
    with pytest.raises(ValueError):
        ThompsonBandit.from_json(b'{"format": "something else"}')
