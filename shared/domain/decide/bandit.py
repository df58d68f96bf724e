"""Layer 3: which structure to trade, by contextual Thompson sampling.

One Thompson-sampling bandit per context (the regime label); the arms are structures
(:class:`shared.contracts.Structure`). Each (context, arm) keeps a Normal-Gamma posterior of
the arm's realised paper P&L per unit of risk (e.g. P&L / max loss), updated as trades
close. Pure and immutable: :meth:`ThompsonBandit.update` returns a new bandit, and all
randomness comes from a caller-supplied :class:`numpy.random.Generator`.

Why Gaussian and not Beta on win/loss: option structures differ mostly in the *size* of
their wins and losses (a short strangle wins often and small, a long straddle rarely and
big), which a win/loss Beta cannot see.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import numpy as np

from shared.contracts import Structure

__all__ = ["ArmChoice", "ArmPosterior", "ThompsonBandit"]

_FORMAT = "quantsentinel.decide.thompson/v1"


@dataclass(frozen=True, slots=True)
class ArmPosterior:
    r"""Normal-Gamma posterior of one arm's reward: :math:`r \sim N(\mu, 1/\tau)`,
    :math:`\tau \sim \mathrm{Gamma}(\alpha, \beta)` (rate :math:`\beta`),
    :math:`\mu \mid \tau \sim N(m, 1/(\kappa\tau))`.

    One reward :math:`r` updates

    .. math::

        m' = \frac{\kappa m + r}{\kappa + 1},\quad \kappa' = \kappa + 1,\quad
        \alpha' = \alpha + \tfrac12,\quad
        \beta' = \beta + \frac{\kappa (r - m)^2}{2(\kappa + 1)}.

    The marginal posterior of the mean is Student-t with :math:`2\alpha` degrees of freedom,
    location :math:`m` and scale :math:`\sqrt{\beta / (\alpha\kappa)}`; that is what
    :meth:`draw` samples.

    Attributes
    ----------
    m, kappa, alpha, beta
        The Normal-Gamma parameters (``kappa``, ``alpha``, ``beta`` > 0).
    n
        Rewards observed.
    """

    m: float = 0.0
    kappa: float = 1.0
    alpha: float = 2.0
    beta: float = 0.1
    n: int = 0

    def __post_init__(self) -> None:
        for name in ("m", "kappa", "alpha", "beta"):
            if not math.isfinite(float(getattr(self, name))):
                raise ValueError(f"{name} must be finite")
        if self.kappa <= 0 or self.alpha <= 0 or self.beta <= 0:
            raise ValueError("kappa, alpha and beta must be positive")
        if self.n < 0:
            raise ValueError("n must be non-negative")

    @property
    def mean(self) -> float:
        """Posterior mean of :math:`\\mu`."""
        return self.m

    @property
    def scale(self) -> float:
        """Scale of the Student-t marginal of :math:`\\mu`: :math:`\\sqrt{\\beta/(\\alpha\\kappa)}`."""
        return math.sqrt(self.beta / (self.alpha * self.kappa))

    def update(self, reward: float) -> ArmPosterior:
        """The posterior after one more reward (see the class docstring)."""
        r = float(reward)
        if not math.isfinite(r):
            raise ValueError(f"reward must be finite, got {reward!r}")
        k1 = self.kappa + 1.0
        return ArmPosterior(m=(self.kappa * self.m + r) / k1, kappa=k1, alpha=self.alpha + 0.5,
                            beta=self.beta + self.kappa * (r - self.m) ** 2 / (2.0 * k1),
                            n=self.n + 1)

    def draw(self, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
        """Draws of :math:`\\mu` from its Student-t marginal."""
        return self.m + self.scale * rng.standard_t(2.0 * self.alpha, size=size)

    def to_list(self) -> list[float]:
        return [self.m, self.kappa, self.alpha, self.beta, self.n]


@dataclass(frozen=True, slots=True)
class ArmChoice:
    """The arm Thompson sampling chose, and the numbers for the explanation.

    Attributes
    ----------
    context
        The context (regime label).
    arm
        The chosen structure: the arm with the largest single posterior draw.
    draws
        That one posterior draw per considered arm.
    probabilities
        Per considered arm, the Monte-Carlo estimate (``n_mc`` joint draws) of the
        posterior probability that the arm has the highest mean reward; sums to 1.
    means
        Posterior mean reward per considered arm.
    counts
        Rewards observed per considered arm in this context.
    """

    context: str
    arm: Structure
    draws: Mapping[Structure, float]
    probabilities: Mapping[Structure, float]
    means: Mapping[Structure, float]
    counts: Mapping[Structure, int]

    def __post_init__(self) -> None:
        for name in ("draws", "probabilities", "means", "counts"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))


def _arms(arms: Iterable[Structure | str]) -> tuple[Structure, ...]:
    out = tuple(dict.fromkeys(Structure(a) for a in arms))
    if not out:
        raise ValueError("a bandit needs at least one arm")
    return out


@dataclass(frozen=True, slots=True)
class ThompsonBandit:
    """A Thompson-sampling bandit per context over structure arms.

    Attributes
    ----------
    arms
        The structures it may choose (default: every :class:`Structure`).
    prior
        The Normal-Gamma prior every (context, arm) starts from. The default (mean 0,
        :math:`\\kappa=1`, :math:`\\alpha=2`, :math:`\\beta=0.1`: a prior guess of the
        reward's standard deviation of about 0.3 risk units) lets a handful of trades move
        an arm.
    posteriors
        ``context -> arm -> ArmPosterior``, only where updated; read-only.
    """

    arms: tuple[Structure, ...] = tuple(Structure)
    prior: ArmPosterior = field(default_factory=ArmPosterior)
    posteriors: Mapping[str, Mapping[Structure, ArmPosterior]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        arms = _arms(self.arms)
        object.__setattr__(self, "arms", arms)
        if self.prior.n != 0:
            raise ValueError("the prior must have n == 0")
        clean: dict[str, Mapping[Structure, ArmPosterior]] = {}
        for ctx, per in dict(self.posteriors).items():
            inner = {Structure(a): p for a, p in dict(per).items()}
            unknown = set(inner) - set(arms)
            if unknown:
                raise ValueError(f"posteriors for arms not in the bandit: "
                                 f"{sorted(a.value for a in unknown)}")
            clean[str(ctx)] = MappingProxyType(inner)
        object.__setattr__(self, "posteriors", MappingProxyType(clean))

    def posterior(self, context: str, arm: Structure | str) -> ArmPosterior:
        """The posterior of ``arm`` in ``context`` (the prior when never updated)."""
        a = Structure(arm)
        if a not in self.arms:
            raise ValueError(f"{a.value} is not an arm of this bandit")
        return self.posteriors.get(context, {}).get(a, self.prior)

    def update(self, context: str, arm: Structure | str, reward: float) -> ThompsonBandit:
        """A new bandit with one realised reward (paper P&L per unit risk) folded in."""
        a = Structure(arm)
        post = self.posterior(context, a).update(reward)
        outer = dict(self.posteriors)
        inner = dict(outer.get(context, {}))
        inner[a] = post
        outer[context] = inner
        return replace(self, posteriors=outer)

    def sample(self, context: str, rng: np.random.Generator,
               allowed: Iterable[Structure | str] | None = None, *,
               n_mc: int = 2000) -> ArmChoice:
        """Choose an arm by Thompson sampling.

        One draw :math:`\\tilde\\mu_a` per considered arm from its posterior; the choice is
        :math:`\\arg\\max_a \\tilde\\mu_a` (ties to the first arm in :attr:`arms` order).
        Then ``n_mc`` joint draws estimate :math:`P(a = \\arg\\max)` for the explanation.

        Parameters
        ----------
        context
            The regime label.
        rng
            The only source of randomness.
        allowed
            Restrict to these arms (e.g. the regime's allowed structures); ``None``: all.
            Arms not in the bandit are ignored; an empty result raises ``ValueError``.
        n_mc
            Monte-Carlo draws for ``probabilities`` (>= 1).
        """
        if n_mc < 1:
            raise ValueError("n_mc must be >= 1")
        if allowed is None:
            arms = self.arms
        else:
            want = {Structure(a) for a in allowed}
            arms = tuple(a for a in self.arms if a in want)
        if not arms:
            raise ValueError(f"no arm allowed in context {context!r}")
        posts = [self.posterior(context, a) for a in arms]
        draws = np.array([float(p.draw(rng)) for p in posts])
        best = int(np.argmax(draws))
        joint = np.column_stack([p.draw(rng, size=n_mc) for p in posts])
        wins = np.bincount(np.argmax(joint, axis=1), minlength=len(arms))
        probs = wins / float(n_mc)
        return ArmChoice(context=context, arm=arms[best],
                         draws={a: float(d) for a, d in zip(arms, draws, strict=True)},
                         probabilities={a: float(q) for a, q in zip(arms, probs, strict=True)},
                         means={a: p.mean for a, p in zip(arms, posts, strict=True)},
                         counts={a: p.n for a, p in zip(arms, posts, strict=True)})

    # --- storage ---------------------------------------------------------------------

    def to_json(self) -> bytes:
        """Canonical JSON bytes (sorted keys; floats round-trip exactly)."""
        doc = {
            "format": _FORMAT,
            "arms": [a.value for a in self.arms],
            "prior": self.prior.to_list(),
            "posteriors": {ctx: {a.value: p.to_list() for a, p in per.items()}
                           for ctx, per in self.posteriors.items()},
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":"),
                          allow_nan=False).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes | str) -> ThompsonBandit:
        """The bandit :meth:`to_json` wrote."""
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise ValueError(f"not a {_FORMAT} document")

        def post(v: list[float]) -> ArmPosterior:
            m, kappa, alpha, beta, n = v
            if int(n) != n:
                raise ValueError(f"n must be an integer, got {n!r}")
            return ArmPosterior(m=float(m), kappa=float(kappa), alpha=float(alpha),
                                beta=float(beta), n=int(n))

        return cls(arms=tuple(Structure(a) for a in doc["arms"]), prior=post(doc["prior"]),
                   posteriors={ctx: {Structure(a): post(v) for a, v in per.items()}
                               for ctx, per in doc["posteriors"].items()})
