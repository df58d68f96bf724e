"""Indian equity-derivatives trading costs: statutory charges, brokerage and slippage.

Pure domain code: the dated rates (:class:`CostSchedule`; the packaged data is loaded by
:mod:`shared.costs`) and the trade date are arguments; nothing here reads a clock, a file or
the environment.

Conventions
-----------
* ``price`` is rupees per unit (option premium, or futures price); ``qty`` is units
  (lots x lot size), a positive integer. The *traded value* of a fill is ``price x qty``:
  the premium turnover for options, the contract turnover for futures.
* Charges (rows of ``charges.csv``, see :mod:`shared.costs`) are keyed by charge,
  instrument and side/event and apply on the trade date when ``effective_from <= date <=
  effective_to``. A row's ``side`` is ``buy``, ``sell``, ``both`` (buy and sell fills) or
  ``exercise`` (an ITM option closed by exercise at expiry). GST rows always have side
  ``both`` and apply to every event, because their base is the other charges.
* Rates are in the unit named by the row's ``basis``: ``pct_premium`` / ``pct_turnover`` /
  ``pct_intrinsic`` are percent of the premium turnover / futures turnover / intrinsic value
  (0.0625 means 0.0625 %); ``inr_per_crore`` is rupees per crore (10^7) of the traded value
  (premium for options); ``pct_of:a+b+...`` is percent of the sum of the named charges
  (GST: ``pct_of:brokerage+exchange+sebi+ipft``).
* Exercise: index options are cash-settled. At expiry an ITM *long* option is exercised:
  the holder pays STT on the intrinsic value ``(settlement - strike) x qty`` (calls; the
  reverse for puts) and nothing else. Quote it with ``exercise=True, side="sell"`` (the
  long is disposed of by exercise) and ``intrinsic`` per unit; brokerage defaults to no
  order. An assigned short and an OTM option pay nothing at expiry; futures held to expiry
  are cash-settled at the final settlement price, which is not a sale, so no STT or
  transaction charge is assumed (NSE Clearing describes STT on sell trades and on the final
  exercise of options only; physically settled stock derivatives are not modelled).

Money and rounding
------------------
All amounts are :class:`~decimal.Decimal` rupees computed *exactly* (no rounding) per fill.
Linear charges on exact values add up, so the cost of a structure equals the rates applied
to its aggregate buy/sell turnover, as a contract note computes them. Rounding happens only
for presentation: :meth:`CostBreakdown.rounded` rounds each charge to the paisa, half up
(contract notes show charges in paise), and makes ``total`` the sum of the rounded lines so
a displayed breakdown adds up. This reproduces the usual worked example (buy 500 @ 25, sell
500 @ 35 at 2025 rates: exchange 10.509 -> 10.51, stamp 0.375 -> 0.38, GST 1.92402 -> 1.92,
total 30.49; GST on the exact or on the rounded lines gives 1.92 either way). Brokers'
contract notes round STT to the nearest rupee, half up (Geojit and Tradejini FAQs, citing
the STT rules): pass ``stt_to_rupee=True`` to :meth:`~CostBreakdown.rounded` for that. The
difference is at most Rs 0.50 per contract note; applying it per fill would overstate the
cost of fills that share a note, so the engine keeps STT exact.

Slippage
--------
:class:`SlippageModel` gives the expected cost of crossing the quoted spread:

    slippage = (spread / 2) x qty x (1 + impact x (qty / displayed_qty) ** exponent)

A marketable order pays at least half the spread per unit (measured from the mid); the
bracket grows with the order's share of the displayed quantity on the side it takes (the
square-root law of market impact by default, ``exponent=0.5``), scaled by the configurable
``impact`` coefficient (default 0.5: an order equal to the displayed size costs 1.5
half-spreads per unit). It is never negative, zero for a zero spread, and non-decreasing
in both spread and size.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

from shared.errors import PermanentError

Instrument = Literal["option", "future"]
Side = Literal["buy", "sell"]
RowSide = Literal["buy", "sell", "exercise", "both"]
Position = Literal["long", "short"]

INSTRUMENTS: tuple[str, ...] = ("option", "future")
SIDES: tuple[str, ...] = ("buy", "sell")
ROW_SIDES: tuple[str, ...] = ("buy", "sell", "exercise", "both")
#: Statutory charges, in the order of :class:`CostBreakdown`'s fields.
CHARGES: tuple[str, ...] = ("stt", "exchange", "sebi", "ipft", "stamp", "gst")
#: What a GST row may name in its base.
GST_BASE_PARTS: tuple[str, ...] = ("brokerage", "exchange", "sebi", "ipft", "stamp", "stt")
#: Bases of the non-GST rows and the instruments / events they fit.
BASES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "pct_premium": (frozenset({"option"}), frozenset({"buy", "sell", "both"})),
    "pct_turnover": (frozenset({"future"}), frozenset({"buy", "sell", "both"})),
    "pct_intrinsic": (frozenset({"option"}), frozenset({"exercise"})),
    "inr_per_crore": (frozenset({"option", "future"}), frozenset({"buy", "sell", "both"})),
}
GST_BASIS = re.compile(r"^pct_of:([a-z]+(?:\+[a-z]+)*)$")

PAISA = Decimal("0.01")
RUPEE = Decimal("1")
ZERO = Decimal(0)
_HUNDRED = Decimal(100)
_CRORE = Decimal(10_000_000)


# ---------------------------------------------------------------------------- errors


class CostError(PermanentError, ValueError):
    """A cost could not be computed from these inputs (retrying cannot help)."""

    reason_code = "cost_error"


class InvalidCostInput(CostError):
    """A price, quantity, side, instrument, date or plan is not acceptable."""

    reason_code = "cost_invalid_input"


class NoCostData(CostError):
    """The schedule has no rates for that instrument on that date."""

    reason_code = "cost_no_data"


class UnknownPlan(InvalidCostInput):
    """No brokerage plan of that name (for that instrument)."""

    reason_code = "cost_unknown_plan"


# ---------------------------------------------------------------------------- dated data


@dataclass(frozen=True, slots=True)
class ChargeRate:
    """One dated row of a statutory charge (see the module docstring for units)."""

    charge: str
    instrument: str
    side: str
    effective_from: date
    effective_to: date | None
    rate: Decimal
    basis: str
    source: str

    def covers(self, d: date) -> bool:
        return self.effective_from <= d and (self.effective_to is None or d <= self.effective_to)

    def applies_to(self, event: str) -> bool:
        """Whether the row charges a fill of ``event`` (buy, sell or exercise)."""
        if self.charge == "gst":
            return True
        return self.side == event or (self.side == "both" and event in SIDES)

    @property
    def gst_base(self) -> tuple[str, ...]:
        """The charges a ``pct_of:`` row applies to (empty for other bases)."""
        m = GST_BASIS.match(self.basis)
        return tuple(m.group(1).split("+")) if m else ()

    def amount(self, value: Decimal) -> Decimal:
        """The charge on ``value`` rupees of this row's basis, exact."""
        if self.basis == "inr_per_crore":
            return value * self.rate / _CRORE
        return value * self.rate / _HUNDRED

    def describe(self) -> str:
        if self.basis == "inr_per_crore":
            what = "premium" if self.instrument == "option" else "turnover"
            return f"Rs {self.rate} per crore of {what}"
        if self.basis.startswith("pct_of:"):
            return f"{self.rate}% of ({' + '.join(self.gst_base)})"
        return f"{self.rate}% of {self.basis.removeprefix('pct_')}"


@dataclass(frozen=True, slots=True)
class BrokeragePlan:
    """A broker's fee per executed order: flat, or a percent of turnover (optionally capped).

    ``instrument`` is ``option``, ``future`` or ``both``. A fill split over ``orders``
    orders of equal size pays ``orders x flat`` or ``min(percent x turnover, orders x cap)``.
    """

    plan: str
    instrument: str
    flat_per_order: Decimal | None
    percent: Decimal | None
    cap_per_order: Decimal | None
    source: str

    def fee(self, turnover: Decimal, orders: int) -> Decimal:
        if orders == 0:
            return ZERO
        if self.percent is None:
            return (self.flat_per_order or ZERO) * orders
        pct = turnover * self.percent / _HUNDRED
        return pct if self.cap_per_order is None else min(pct, self.cap_per_order * orders)

    def applies_to(self, instrument: str) -> bool:
        return self.instrument in ("both", instrument)

    def describe(self) -> str:
        if self.percent is None:
            return f"Rs {self.flat_per_order} per executed order"
        cap = "" if self.cap_per_order is None else f", capped at Rs {self.cap_per_order}/order"
        return f"{self.percent}% of turnover{cap}"


def _events(side: str) -> frozenset[str]:
    return frozenset(SIDES) if side == "both" else frozenset({side})


def schedule_problems(rates: Sequence[ChargeRate]) -> list[tuple[int, str]]:
    """Consistency problems of a rate table as ``(row index, message)``, empty if sound.

    Rows of one (charge, instrument, side) must follow each other without gap or overlap
    (a charge that lapsed is recorded with rate 0), and rows of one (charge, instrument)
    whose sides share an event (``both`` vs ``buy``) must not overlap in time.
    """
    problems: list[tuple[int, str]] = []
    by_key: dict[tuple[str, str, str], list[int]] = {}
    for i, r in enumerate(rates):
        by_key.setdefault((r.charge, r.instrument, r.side), []).append(i)
    for (charge, inst, side), idx in by_key.items():
        idx.sort(key=lambda i: rates[i].effective_from)
        for a, b in zip(idx, idx[1:], strict=False):
            ra, rb = rates[a], rates[b]
            if ra.effective_to is None or ra.effective_to >= rb.effective_from:
                problems.append((b, f"{charge}/{inst}/{side} from {rb.effective_from} overlaps "
                                    f"the row from {ra.effective_from}"))
            elif ra.effective_to + timedelta(days=1) != rb.effective_from:
                problems.append((b, f"{charge}/{inst}/{side}: gap between {ra.effective_to} "
                                    f"and {rb.effective_from} (record a lapsed charge as 0)"))
    keys = sorted(by_key)
    for n, ka in enumerate(keys):
        for kb in keys[n + 1:]:
            if ka[:2] != kb[:2] or not (_events(ka[2]) & _events(kb[2])):
                continue
            for i in by_key[ka]:
                for j in by_key[kb]:
                    ri, rj = rates[i], rates[j]
                    if _overlap(ri, rj):
                        problems.append((max(i, j), f"{ri.charge}/{ri.instrument}: sides "
                                         f"{ri.side} and {rj.side} both apply from "
                                         f"{max(ri.effective_from, rj.effective_from)}"))
    return problems


def _overlap(a: ChargeRate, b: ChargeRate) -> bool:
    a_end = a.effective_to or date.max
    b_end = b.effective_to or date.max
    return a.effective_from <= b_end and b.effective_from <= a_end


@dataclass(frozen=True)
class CostSchedule:
    """The dated statutory rates and the brokerage plans (both validated on construction)."""

    rates: tuple[ChargeRate, ...]
    plans: tuple[BrokeragePlan, ...]
    _index: dict[tuple[str, str, str], tuple[ChargeRate, ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        problems = schedule_problems(self.rates)
        if problems:
            i, msg = problems[0]
            raise ValueError(f"cost schedule row {i}: {msg}")
        index: dict[tuple[str, str, str], list[ChargeRate]] = {}
        for r in self.rates:
            index.setdefault((r.charge, r.instrument, r.side), []).append(r)
        object.__setattr__(
            self,
            "_index",
            {k: tuple(sorted(v, key=lambda r: r.effective_from)) for k, v in index.items()},
        )

    def coverage(self, instrument: str) -> tuple[date, date | None]:
        """The dates on which every charge of ``instrument`` has a rate (end None: open)."""
        keys = [k for k in self._index if k[1] == instrument]
        if not keys:
            raise NoCostData(f"the cost schedule has no rates for {instrument}s")
        start = max(self._index[k][0].effective_from for k in keys)
        ends = [self._index[k][-1].effective_to for k in keys]
        finite = [e for e in ends if e is not None]
        return start, (min(finite) if finite else None)

    def rates_on(self, instrument: str, event: str, on: date) -> tuple[ChargeRate, ...]:
        """The rows charging a ``event`` fill of ``instrument`` on ``on`` (GST last)."""
        start, end = self.coverage(instrument)
        if on < start or (end is not None and on > end):
            span = f"{start.isoformat()}..{end.isoformat() if end else 'open'}"
            raise NoCostData(
                f"no {instrument} charges for {on.isoformat()}: the cost data covers {span}"
            )
        found: list[ChargeRate] = []
        for (_, inst, _), rows in self._index.items():
            if inst != instrument:
                continue
            for r in rows:
                if r.covers(on) and r.applies_to(event):
                    found.append(r)
        found.sort(key=lambda r: (r.charge == "gst", CHARGES.index(r.charge)))
        return tuple(found)

    @property
    def plan_names(self) -> tuple[str, ...]:
        return tuple(sorted({p.plan for p in self.plans}))

    def plan(self, name: str, instrument: str) -> BrokeragePlan:
        for p in self.plans:
            if p.plan == name and p.applies_to(instrument):
                return p
        known = ", ".join(self.plan_names) or "none"
        raise UnknownPlan(f"no brokerage plan {name!r} for {instrument}s (known: {known})")


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class ChargeLine:
    """One computed line of a breakdown, with the rule that produced it (for explanations)."""

    charge: str  # one of CHARGES, or "brokerage" / "slippage"
    base: Decimal  # rupees the rate applied to
    amount: Decimal
    rule: ChargeRate | BrokeragePlan | SlippageEstimate | None
    text: str

    @property
    def source(self) -> str | None:
        return getattr(self.rule, "source", None)


_AMOUNT_FIELDS = ("stt", "exchange", "sebi", "ipft", "stamp", "gst", "brokerage", "slippage")


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """Costs of one fill or of several added together, in rupees.

    ``total = statutory + brokerage + slippage``; GST on brokerage is part of ``gst`` and
    so of ``statutory``. ``lines`` record each rate applied, with its source.
    """

    stt: Decimal
    exchange: Decimal
    sebi: Decimal
    ipft: Decimal
    stamp: Decimal
    gst: Decimal
    brokerage: Decimal
    slippage: Decimal
    total: Decimal
    lines: tuple[ChargeLine, ...] = ()

    def __post_init__(self) -> None:
        expected = sum((getattr(self, f) for f in _AMOUNT_FIELDS), ZERO)
        if self.total != expected:
            raise ValueError(f"total {self.total} != sum of the parts {expected}")

    @classmethod
    def build(cls, lines: Iterable[ChargeLine] = (), **amounts: Decimal) -> CostBreakdown:
        parts = {f: Decimal(amounts.pop(f, ZERO)) for f in _AMOUNT_FIELDS}
        if amounts:
            raise TypeError(f"unknown cost fields {sorted(amounts)}")
        return cls(**parts, total=sum(parts.values(), ZERO), lines=tuple(lines))

    @classmethod
    def zero(cls, note: str | None = None) -> CostBreakdown:
        lines = (ChargeLine("none", ZERO, ZERO, None, note),) if note else ()
        return cls.build(lines)

    @classmethod
    def combine(cls, parts: Iterable[CostBreakdown]) -> CostBreakdown:
        out = cls.zero()
        for p in parts:
            out = out + p
        return out

    def __add__(self, other: CostBreakdown) -> CostBreakdown:
        if not isinstance(other, CostBreakdown):
            return NotImplemented
        return CostBreakdown.build(
            self.lines + other.lines,
            **{f: getattr(self, f) + getattr(other, f) for f in _AMOUNT_FIELDS},
        )

    @property
    def statutory(self) -> Decimal:
        """Taxes and regulatory/exchange levies: STT, exchange, SEBI, IPFT, stamp, GST."""
        return self.stt + self.exchange + self.sebi + self.ipft + self.stamp + self.gst

    def rounded(self, *, stt_to_rupee: bool = False) -> CostBreakdown:
        """Each amount rounded half up to the paisa (STT to the rupee if asked); the total
        is the sum of the rounded amounts, as on a contract note."""
        parts = {f: _round(getattr(self, f), PAISA) for f in _AMOUNT_FIELDS}
        if stt_to_rupee:
            parts["stt"] = _round(self.stt, RUPEE)
        return CostBreakdown.build(self.lines, **parts)

    def explain(self) -> tuple[str, ...]:
        return tuple(line.text for line in self.lines)

    def as_dict(self) -> dict[str, float]:
        """Float rupees (exact values converted; round first for display)."""
        return {f: float(getattr(self, f)) for f in (*_AMOUNT_FIELDS, "total")}


def quote_json(breakdown: CostBreakdown) -> dict[str, float]:
    """The CLI's view of a breakdown: rupees rounded half up to the paisa.

    Keys are exactly ``stt, exchange, sebi, ipft, stamp, gst, brokerage, total``; ``total``
    is the sum of the rounded amounts (it includes slippage, which has no key here).
    """
    r = breakdown.rounded()
    keys = ("stt", "exchange", "sebi", "ipft", "stamp", "gst", "brokerage", "total")
    return {k: float(getattr(r, k)) for k in keys}


# ---------------------------------------------------------------------------- slippage


@dataclass(frozen=True, slots=True)
class SlippageEstimate:
    """The expected slippage of one fill and the numbers behind it."""

    half_spread: Decimal
    qty: int
    displayed_qty: int
    participation: Decimal  # qty / displayed_qty
    factor: Decimal  # 1 + impact x participation ** exponent
    amount: Decimal  # rupees, >= 0
    source: str = "slippage model"


@dataclass(frozen=True, slots=True)
class SlippageModel:
    """Expected cost of crossing the spread (formula in the module docstring)."""

    impact: float = 0.5
    exponent: float = 0.5

    def __post_init__(self) -> None:
        for name in ("impact", "exponent"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise InvalidCostInput(f"slippage {name} must be a finite number, got {v!r}")
        if self.impact < 0:
            raise InvalidCostInput(f"slippage impact must be >= 0, got {self.impact}")
        if self.exponent <= 0:
            raise InvalidCostInput(f"slippage exponent must be > 0, got {self.exponent}")

    def factor(self, participation: Decimal) -> Decimal:
        impact = _dec(self.impact)
        if impact == 0 or participation == 0:
            return Decimal(1)
        return 1 + impact * participation ** _dec(self.exponent)

    def estimate(
        self,
        *,
        qty: int,
        displayed_qty: int,
        spread: Any = None,
        bid: Any = None,
        ask: Any = None,
    ) -> SlippageEstimate:
        """Expected slippage for ``qty`` units given the quoted spread and displayed size.

        Give either ``spread`` (ask - bid, rupees per unit) or ``bid`` and ``ask``. A zero
        bid or ask is a missing quote (feeds encode "no data" as 0) and is rejected.
        ``displayed_qty`` is the quantity shown on the side the order takes.
        """
        n = _qty(qty, "qty")
        shown = _qty(displayed_qty, "displayed_qty")
        if spread is not None:
            if bid is not None or ask is not None:
                raise InvalidCostInput("give either spread or bid and ask, not both")
            s = _money(spread, "spread")
        else:
            if bid is None or ask is None:
                raise InvalidCostInput("give the spread, or both bid and ask")
            b, a = _money(bid, "bid"), _money(ask, "ask")
            if b <= 0 or a <= 0:
                raise InvalidCostInput(f"bid {b} / ask {a}: a zero quote is missing, not a price")
            if a < b:
                raise InvalidCostInput(f"crossed quote: ask {a} < bid {b}")
            s = a - b
        participation = Decimal(n) / Decimal(shown)
        factor = self.factor(participation)
        half = s / 2
        return SlippageEstimate(
            half_spread=half,
            qty=n,
            displayed_qty=shown,
            participation=participation,
            factor=factor,
            amount=half * n * factor,
            source=f"slippage model (impact {self.impact}, exponent {self.exponent})",
        )


# ---------------------------------------------------------------------------- quoting


def quote(
    schedule: CostSchedule,
    *,
    trade_date: date,
    instrument: str,
    side: str,
    price: Any,
    qty: Any,
    exercise: bool = False,
    intrinsic: Any = None,
    plan: str | BrokeragePlan = "standard",
    orders: int | None = None,
    slippage: SlippageEstimate | Decimal | float | int | None = None,
) -> CostBreakdown:
    """All costs of one fill of ``qty`` units at ``price`` rupees per unit on ``trade_date``.

    ``exercise=True`` quotes the exercise of a long option at expiry (``side="sell"``,
    ``intrinsic`` rupees per unit >= 0; ``price`` is validated but not used). ``orders`` is
    the number of executed orders the fill took (default 1, or 0 for an exercise).
    ``slippage`` is a :class:`SlippageEstimate` or an amount in rupees (>= 0).
    """
    d = _date(trade_date)
    inst = _choice(instrument, INSTRUMENTS, "instrument")
    s = _choice(side, SIDES, "side")
    p = _money(price, "price")
    n = _qty(qty, "qty")
    if not isinstance(exercise, bool):
        raise InvalidCostInput(f"exercise must be True or False, got {exercise!r}")
    if exercise:
        if inst != "option":
            raise InvalidCostInput("only options are exercised: futures settle at expiry")
        if s != "sell":
            raise InvalidCostInput(
                "exercise closes a long option: quote it with side='sell' "
                "(an assigned short pays no charge at expiry)"
            )
        if intrinsic is None:
            raise InvalidCostInput("exercise needs the intrinsic value per unit")
        event, value = "exercise", _money(intrinsic, "intrinsic") * n
    else:
        if intrinsic is not None:
            raise InvalidCostInput("intrinsic is only used with exercise=True")
        event, value = s, p * n
    n_orders = (0 if exercise else 1) if orders is None else _count(orders, "orders")
    broker = _plan(schedule, plan, inst)
    rows = schedule.rates_on(inst, event, d)

    amounts = dict.fromkeys((*CHARGES, "brokerage", "slippage"), ZERO)
    lines: list[ChargeLine] = []
    what = {"buy": "buy", "sell": "sell", "exercise": "exercised"}[event]
    kind = "intrinsic value" if exercise else ("premium" if inst == "option" else "turnover")
    for r in rows:
        if r.charge == "gst":
            continue
        amt = r.amount(value)
        amounts[r.charge] += amt
        lines.append(ChargeLine(r.charge, value, amt, r, (
            f"{r.charge}: {r.describe()} on {what} {kind} Rs {value} = Rs {amt} "
            f"[{r.effective_from}..{r.effective_to or ''}; {r.source}]"
        )))
    fee = broker.fee(value, n_orders)
    amounts["brokerage"] = fee
    lines.append(ChargeLine("brokerage", value, fee, broker, (
        f"brokerage: plan {broker.plan}, {broker.describe()} x {n_orders} order(s) = Rs {fee} "
        f"[{broker.source}]"
    )))
    for r in rows:
        if r.charge != "gst":
            continue
        base = sum((amounts[c] for c in r.gst_base), ZERO)
        amt = r.amount(base)
        amounts["gst"] += amt
        lines.append(ChargeLine("gst", base, amt, r, (
            f"gst: {r.describe()} = {r.rate}% of Rs {base} = Rs {amt} "
            f"[{r.effective_from}..{r.effective_to or ''}; {r.source}]"
        )))
    if slippage is not None:
        est = slippage if isinstance(slippage, SlippageEstimate) else None
        amt = est.amount if est is not None else _money(slippage, "slippage")
        if amt < 0:
            raise InvalidCostInput(f"slippage must be >= 0, got {amt}")
        amounts["slippage"] = amt
        text = f"slippage: Rs {amt}"
        if est is not None:
            text += (f" = half-spread {est.half_spread} x {est.qty} x factor {est.factor} "
                     f"(size/displayed {est.participation}) [{est.source}]")
        lines.append(ChargeLine("slippage", value, amt, est, text))
    return CostBreakdown.build(lines, **amounts)


# ---------------------------------------------------------------------------- structures


@dataclass(frozen=True, slots=True)
class Leg:
    """One leg of a structure: opened at ``entry_price``, closed at ``exit_price`` or, if
    that is None, held to expiry (options then need ``settlement_intrinsic`` per unit,
    0 for an OTM leg)."""

    instrument: str
    position: str  # long | short
    qty: int
    entry_price: Any
    exit_price: Any = None
    settlement_intrinsic: Any = None
    entry_orders: int = 1
    exit_orders: int = 1
    entry_slippage: SlippageEstimate | Decimal | float | int | None = None
    exit_slippage: SlippageEstimate | Decimal | float | int | None = None
    label: str = ""


@dataclass(frozen=True, slots=True)
class FillCost:
    leg: int  # index into the legs
    phase: str  # entry | exit | expiry
    cost: CostBreakdown


@dataclass(frozen=True, slots=True)
class RoundTripCost:
    """Entry and exit (or expiry settlement) costs of a structure, leg by leg."""

    entry: CostBreakdown
    exit: CostBreakdown
    fills: tuple[FillCost, ...]

    @property
    def total(self) -> Decimal:
        return self.entry.total + self.exit.total

    @property
    def statutory(self) -> Decimal:
        return self.entry.statutory + self.exit.statutory

    @property
    def combined(self) -> CostBreakdown:
        return self.entry + self.exit


def round_trip(
    schedule: CostSchedule,
    legs: Sequence[Leg],
    *,
    entry_date: date,
    exit_date: date,
    plan: str | BrokeragePlan = "standard",
) -> RoundTripCost:
    """Cost a structure opened on ``entry_date`` and closed (or expired) on ``exit_date``.

    A long leg is bought at entry and sold at exit; a short leg the reverse. A leg with no
    ``exit_price`` is held to expiry (``exit_date`` is then the expiry day): an ITM long
    option pays STT on its intrinsic value (exercise), an assigned short option, an OTM
    option and a future settled at expiry pay nothing.
    """
    d0, d1 = _date(entry_date), _date(exit_date)
    if d1 < d0:
        raise InvalidCostInput(f"exit_date {d1} is before entry_date {d0}")
    if not legs:
        raise InvalidCostInput("a structure needs at least one leg")
    fills: list[FillCost] = []
    for i, leg in enumerate(legs):
        if not isinstance(leg, Leg):
            raise InvalidCostInput(f"leg {i} is a {type(leg).__name__}, not a Leg")
        pos = _choice(leg.position, ("long", "short"), f"leg {i} position")
        open_side, close_side = ("buy", "sell") if pos == "long" else ("sell", "buy")
        common = dict(instrument=leg.instrument, qty=leg.qty, plan=plan)
        fills.append(FillCost(i, "entry", quote(
            schedule, trade_date=d0, side=open_side, price=leg.entry_price,
            orders=leg.entry_orders, slippage=leg.entry_slippage, **common,
        )))
        if leg.exit_price is not None:
            if leg.settlement_intrinsic is not None:
                raise InvalidCostInput(f"leg {i}: give exit_price or settlement_intrinsic")
            fills.append(FillCost(i, "exit", quote(
                schedule, trade_date=d1, side=close_side, price=leg.exit_price,
                orders=leg.exit_orders, slippage=leg.exit_slippage, **common,
            )))
            continue
        fills.append(FillCost(i, "expiry", _settle(schedule, leg, i, pos, d1, plan)))
    entry = CostBreakdown.combine(f.cost for f in fills if f.phase == "entry")
    exit_ = CostBreakdown.combine(f.cost for f in fills if f.phase != "entry")
    return RoundTripCost(entry=entry, exit=exit_, fills=tuple(fills))


def _settle(
    schedule: CostSchedule, leg: Leg, i: int, pos: str, on: date, plan: str | BrokeragePlan
) -> CostBreakdown:
    inst = _choice(leg.instrument, INSTRUMENTS, f"leg {i} instrument")
    schedule.coverage(inst)  # unknown instruments fail here, uncovered dates below
    if inst == "future":
        if leg.settlement_intrinsic is not None:
            raise InvalidCostInput(f"leg {i}: settlement_intrinsic is for options")
        schedule.rates_on(inst, "sell", on)
        return CostBreakdown.zero(f"leg {i}: future cash-settled at expiry, no charge")
    if leg.settlement_intrinsic is None:
        raise InvalidCostInput(
            f"leg {i}: an option held to expiry needs settlement_intrinsic (0 if OTM)"
        )
    iv = _money(leg.settlement_intrinsic, f"leg {i} settlement_intrinsic")
    schedule.rates_on(inst, "exercise", on)
    if iv == 0:
        return CostBreakdown.zero(f"leg {i}: option expired worthless, no charge")
    if pos == "short":
        return CostBreakdown.zero(f"leg {i}: short option assigned, cash-settled, no charge")
    return quote(schedule, trade_date=on, instrument="option", side="sell", price=iv,
                 qty=leg.qty, exercise=True, intrinsic=iv, plan=plan, orders=0)


# ---------------------------------------------------------------------------- validation


def _dec(x: Any) -> Decimal:
    if isinstance(x, Decimal):
        return x
    if isinstance(x, int):
        return Decimal(x)
    return Decimal(repr(float(x)))


def _money(x: Any, name: str) -> Decimal:
    """A finite, non-negative amount as an exact Decimal (floats via their shortest repr)."""
    if isinstance(x, bool) or x is None:
        raise InvalidCostInput(f"{name} must be a number, got {x!r}")
    try:
        if isinstance(x, Decimal):
            v = x
        elif isinstance(x, str):
            v = Decimal(x.strip())
        elif isinstance(x, int):
            v = Decimal(x)
        else:
            f = float(x)
            if not math.isfinite(f):
                raise InvalidCostInput(f"{name} must be finite, got {x!r}")
            v = Decimal(repr(f))
    except (InvalidOperation, TypeError, ValueError) as exc:
        if isinstance(exc, InvalidCostInput):
            raise
        raise InvalidCostInput(f"{name} must be a number, got {x!r}") from exc
    if not v.is_finite():
        raise InvalidCostInput(f"{name} must be finite, got {x!r}")
    if v < 0:
        raise InvalidCostInput(f"{name} must be >= 0, got {x!r}")
    return v + 0  # normalises -0


def _int(x: Any, name: str) -> int:
    if isinstance(x, bool):
        raise InvalidCostInput(f"{name} must be an integer, got {x!r}")
    try:
        return operator.index(x)
    except TypeError as exc:
        raise InvalidCostInput(f"{name} must be an integer, got {x!r}") from exc


def _qty(x: Any, name: str) -> int:
    n = _int(x, name)
    if n <= 0:
        raise InvalidCostInput(f"{name} must be a positive integer, got {x!r}")
    return n


def _count(x: Any, name: str) -> int:
    n = _int(x, name)
    if n < 0:
        raise InvalidCostInput(f"{name} must be >= 0, got {x!r}")
    return n


def _date(d: Any) -> date:
    if isinstance(d, datetime) or not isinstance(d, date):
        raise InvalidCostInput(f"expected a date, got {type(d).__name__} {d!r}")
    return d


def _choice(x: Any, allowed: tuple[str, ...], name: str) -> str:
    if not isinstance(x, str) or x not in allowed:
        raise InvalidCostInput(f"{name} must be one of {', '.join(allowed)}; got {x!r}")
    return x


def _plan(schedule: CostSchedule, plan: str | BrokeragePlan, instrument: str) -> BrokeragePlan:
    if isinstance(plan, BrokeragePlan):
        if not plan.applies_to(instrument):
            raise UnknownPlan(f"plan {plan.plan!r} does not cover {instrument}s")
        return plan
    if not isinstance(plan, str):
        raise InvalidCostInput(f"plan must be a plan name, got {plan!r}")
    return schedule.plan(plan, instrument)


def _round(x: Decimal, quantum: Decimal) -> Decimal:
    return x.quantize(quantum, rounding=ROUND_HALF_UP)

