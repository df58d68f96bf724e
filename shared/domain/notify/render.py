"""What a tenant (or the operator) is told: messages in, :class:`~.cards.Card` out (pure).

No I/O and no clock: every time shown comes from the message (shown in IST, UTC+05:30, no
DST). matplotlib is imported lazily, only by :func:`payoff_png` / :func:`payoff_figure`
(cold start), and never through pyplot (no global figure state: a
:class:`matplotlib.figure.Figure` drawn by the Agg canvas).

Signal cards (:func:`render_signal`)
------------------------------------
Units follow :mod:`shared.domain.decide.structures` and :mod:`shared.domain.risk.odds`:
strikes and leg prices are index points (rupees per unit of the underlying); position
amounts are rupees for the whole position, ``units = lots * lot_size`` signed (+ bought,
- sold), ``net_premium = sum(units * price)`` (paid +, received -) and the payoff at expiry
``P(S) = sum(units * intrinsic(S)) - net_premium`` (undiscounted).

* **Lots** traded are the proposal's lots times the signal's ``size_multiplier``, rounded
  down to whole lots per leg (``floor(lots * m + 1e-9)``, as
  :func:`shared.domain.risk.castle.sized_lots`; the news gate only reduces by whole copies
  of the structure, so the legs keep their ratios).
* **Entry zone**: the net premium of *one copy* of the structure (legs' lots divided by
  their greatest common divisor), in points, from the legs' reference prices: a *credit*
  when received, a *debit* when paid. The zone is that premium
  +-:data:`ENTRY_TOLERANCE` (5 %): take a credit of at least the zone's low end, pay a
  debit of at most its high end.
* **Target and stop** (:data:`TARGET_STOP_RULE`), levels of the structure's net premium
  to close at, before costs, with ``C`` the credit or ``D`` the debit per copy and ``Q =
  copies * lot_size`` units:

  - credit: target = buy back at ``0.5 C`` (profit ``0.5 C Q``: 50 % of the max profit,
    which is the credit for every credit structure decide builds); stop = buy back at
    ``2 C`` (loss ``C Q``);
  - debit: target = sell at ``2 D`` (profit ``D Q``: 100 % of the debit); stop = sell at
    ``0.5 D`` (loss ``0.5 D Q``: 50 % of the debit);
  - a profit beyond the max profit, or a loss beyond the max loss, cannot happen at
    expiry: it is capped there (``capped`` in the data) and the level moved to match;
  - a zero net premium has no target or stop.
* **Max profit / loss** and the expected gross edge are the proposal's times
  ``size_multiplier``; **net EV** and costs are the signal's (the cost wall's, at the
  approved size).
* **Top reasons**: the explanation's ``signals`` items (``name``, ``reason``,
  ``contribution``, optional ``axis``) with the largest ``|contribution|``, at most
  :data:`TOP_REASONS`, ties in their given order.

While the tenant is under the dry-run lock (``signal.dry_run``) the title starts with
``PAPER ·`` and says "paper-trading signal", and the text and HTML open with
:data:`PAPER_NOTICE`.

``Card.text`` is plain text, not escaped (a channel sending it with a parse mode escapes
it); ``Card.html`` escapes every value; ``Card.data`` is plain JSON (no NaN, UUIDs and
dates as strings).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from shared.contracts import (
    DecisionProposedV1,
    KillSwitchResetV1,
    KillSwitchTrippedV1,
    Message,
    ModelPromotedV1,
    ModelRejectedV1,
    NotifyDeadV1,
    OptionType,
    Side,
    SignalApprovedV1,
    SignalBlockedV1,
    WallVerdict,
)
from shared.domain.notify.cards import Card
from shared.domain.risk.castle import sized_lots  # the lots a reduced approval trades

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "ENTRY_TOLERANCE",
    "IMAGE_SIZE",
    "PAPER_NOTICE",
    "PAPER_NOTICE_EVENT",
    "RANGE_MARGIN",
    "TARGET_STOP_RULE",
    "TOP_REASONS",
    "breakevens",
    "inr",
    "payoff_at",
    "payoff_curve",
    "payoff_figure",
    "payoff_png",
    "prime_renderer",
    "render_event",
    "render_signal",
    "sized_lots",
]

ENTRY_TOLERANCE = 0.05
"""The entry zone is the reference net premium +- this fraction (5 %)."""
TOP_REASONS = 3
"""At most this many reasons (largest ``|contribution|`` first) on a signal card."""
RANGE_MARGIN = 0.05
"""The payoff diagram spans the lowest strike - 5 % to the highest + 5 % (and breakevens)."""
IMAGE_SIZE = (640, 360)
"""The payoff diagram's size in pixels (6.4 x 3.6 inches at 100 dpi)."""
_DPI = 100

PAPER_NOTICE = ("PAPER-TRADING SIGNAL: this tenant is under the dry-run lock; "
                "no order is placed.")
"""Opens the text and HTML of every signal card while the tenant is in the dry-run lock."""
PAPER_NOTICE_EVENT = ("This tenant is under the dry-run lock: its signals are "
                      "paper-trading signals; no order is placed.")
"""Opens an event card rendered with ``dry_run=True``."""
TARGET_STOP_RULE = (
    "credit: target = buy back at 50% of the credit (50% of max profit), stop = buy back "
    "at 2x the credit; debit: target = sell at 2x the debit (100% of the debit as "
    "profit), stop = sell at 50% of the debit; capped at max profit / max loss; "
    "before costs")
"""The target/stop rule, as the cards state it (see the module docstring)."""

IST = timezone(timedelta(hours=5, minutes=30), "IST")


# ---------------------------------------------------------------------------- formatting


def _esc(x: object) -> str:
    return html.escape(str(x), quote=True)


def inr(x: float, *, sign: bool = False) -> str:
    """Rupees with Indian digit grouping and paise: ``₹12,34,567.50``, ``-₹5.00``."""
    neg = x < 0 and round(abs(x), 2) > 0
    whole, frac = f"{abs(x):.2f}".split(".")
    head, tail = whole[:-3], whole[-3:]
    groups = []
    while len(head) > 2:
        groups.insert(0, head[-2:])
        head = head[:-2]
    if head:
        groups.insert(0, head)
    body = ",".join([*groups, tail])
    prefix = "-" if neg else ("+" if sign else "")
    return f"{prefix}₹{body}.{frac}"


def _money(x: float | None) -> str:
    return "unbounded" if x is None else inr(x)


def _strike(k: Decimal | float) -> str:
    """A strike without trailing zeros: ``24500``, ``24512.5``."""
    d = k if isinstance(k, Decimal) else Decimal(repr(float(k)))
    text = format(d.normalize(), "f")
    return text


def _pts(x: float) -> str:
    return f"{x:,.2f}"


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _when(dt: datetime) -> str:
    return dt.astimezone(IST).strftime("%Y-%m-%d %H:%M IST")


def _label(structure: str) -> str:
    return structure.replace("_", " ")


def _num(x: Any) -> float | None:
    """A finite float from an explanation value, else None."""
    if isinstance(x, bool) or not isinstance(x, int | float | Decimal):
        return None
    f = float(x)
    return f if math.isfinite(f) else None


def _clip(s: str, n: int = 160) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 1] + "…"


# ---------------------------------------------------------------------------- position maths


def _legs(proposal: DecisionProposedV1, size_multiplier: float
          ) -> tuple[list[tuple[float, bool, float, float]], float]:
    """``[(strike, is_call, units, price)]`` at the sized lots, and the net premium (rupees)."""
    out = []
    for leg, lots in zip(proposal.legs, sized_lots(proposal, size_multiplier), strict=True):
        sign = 1.0 if leg.side == Side.BUY else -1.0
        out.append((float(leg.strike), leg.option_type == OptionType.CE,
                    sign * lots * proposal.lot_size, float(leg.price)))
    return out, math.fsum(u * p for _, _, u, p in out)


def _value(legs: Sequence[tuple[float, bool, float, float]], net: float, s: float) -> float:
    return math.fsum(u * (max(s - k, 0.0) if c else max(k - s, 0.0))
                     for k, c, u, _ in legs) - net


def payoff_at(proposal: DecisionProposedV1, prices: Iterable[float], *,
              size_multiplier: float = 1.0) -> tuple[float, ...]:
    """P&L at expiry, rupees for the whole (sized) position, at each underlying price.

    ``P(S) = sum(units * intrinsic(S)) - net_premium`` at the legs' reference prices, with
    every leg taken at its own intrinsic value (one expiry: the usual case).
    """
    legs, net = _legs(proposal, size_multiplier)
    return tuple(_value(legs, net, float(s)) for s in prices)


def breakevens(proposal: DecisionProposedV1, *, size_multiplier: float = 1.0
               ) -> tuple[float, ...]:
    """Underlying prices at expiry where the P&L changes sign, ascending.

    Exact (the payoff is linear between strikes): the finite, positive ends of the
    intervals where it is positive, as :func:`shared.domain.risk.odds.expiry_odds`. A
    price where it only touches zero is not one.
    """
    from shared.domain.risk.odds import breakevens as expiry_breakevens

    legs, net = _legs(proposal, size_multiplier)
    if not any(u for _, _, u, _ in legs):
        return ()
    return expiry_breakevens([u for _, _, u, _ in legs], [k for k, _, _, _ in legs],
                             [c for _, c, _, _ in legs], net)


def payoff_curve(proposal: DecisionProposedV1, *, size_multiplier: float = 1.0
                 ) -> tuple[tuple[float, float], ...]:
    """The exact polyline the diagram plots: ``(S, P(S))`` ascending in ``S``.

    ``S`` spans ``[min strike * 0.95, max strike * 1.05]`` (:data:`RANGE_MARGIN`), widened
    to 2 % beyond any breakeven outside it; the points are the ends, every strike and
    every breakeven (the payoff is linear in between, so the polyline is exact).
    """
    strikes = [float(leg.strike) for leg in proposal.legs]
    bes = breakevens(proposal, size_multiplier=size_multiplier)
    lo = min(strikes) * (1 - RANGE_MARGIN)
    hi = max(strikes) * (1 + RANGE_MARGIN)
    if bes:
        lo = min(lo, bes[0] - 0.02 * bes[0])
        hi = max(hi, bes[-1] + 0.02 * bes[-1])
    lo = max(lo, 0.0)
    xs = sorted({lo, hi, *strikes, *(b for b in bes if lo <= b <= hi)})
    ys = payoff_at(proposal, xs, size_multiplier=size_multiplier)
    return tuple(zip(xs, ys, strict=True))


# ---------------------------------------------------------------------------- the diagram


def _forward(proposal: DecisionProposedV1) -> float | None:
    exp = proposal.explanation.get("expiry")
    f = _num(exp.get("forward")) if isinstance(exp, dict) else None
    return f if f is not None and f > 0 else None


def payoff_figure(proposal: DecisionProposedV1, *, size_multiplier: float = 1.0) -> Figure:
    """The payoff diagram as a matplotlib :class:`~matplotlib.figure.Figure` (no pyplot).

    P&L at expiry (rupees, whole sized position) against the underlying at expiry
    (:func:`payoff_curve`), green where positive and red where negative, the zero line,
    breakevens as dotted verticals with their levels, the forward (when the explanation
    has it) dashed. The first line of ``fig.axes[0]`` is the payoff polyline.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    curve = payoff_curve(proposal, size_multiplier=size_multiplier)
    xs = [x for x, _ in curve]
    ys = [y for _, y in curve]
    bes = breakevens(proposal, size_multiplier=size_multiplier)
    symbol = proposal.symbol.replace("$", r"\$")
    lots = sized_lots(proposal, size_multiplier)
    expiries = sorted({leg.expiry for leg in proposal.legs})

    w, h = IMAGE_SIZE
    fig = Figure(figsize=(w / _DPI, h / _DPI), dpi=_DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.plot(xs, ys, color="#1f3b73", linewidth=1.8, solid_joinstyle="miter")
    ax.fill_between(xs, ys, 0.0, where=[y >= 0 for y in ys], color="#2e9e5b", alpha=0.25,
                    linewidth=0, interpolate=True)
    ax.fill_between(xs, ys, 0.0, where=[y <= 0 for y in ys], color="#d1495b", alpha=0.25,
                    linewidth=0, interpolate=True)
    ax.axhline(0.0, color="#444444", linewidth=0.8)
    for i, b in enumerate(bes):
        if xs[0] <= b <= xs[-1]:
            ax.axvline(b, color="#555555", linewidth=0.8, linestyle=":")
            left = len(bes) > 1 and i % 2 == 0  # pairs: labels outside, never overlapping
            ax.annotate(f"{b:,.0f}", xy=(b, 0.0), xytext=(-3 if left else 3, 4),
                        textcoords="offset points", ha="right" if left else "left",
                        fontsize=7, color="#333333")
    fwd = _forward(proposal)
    if fwd is not None and xs[0] <= fwd <= xs[-1]:
        ax.axvline(fwd, color="#1f77b4", linewidth=0.8, linestyle="--")
        ax.annotate("fwd", xy=(fwd, 0.0), xycoords=("data", "axes fraction"),
                    xytext=(3, 3), textcoords="offset points", fontsize=7, color="#1f77b4")
    ax.set_xlim(xs[0], xs[-1])
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.tick_params(labelsize=7)
    ax.grid(True, linewidth=0.3, alpha=0.5)
    when = ", ".join(str(e) for e in expiries)
    size = (f"{lots[0]} lot{'s' if lots[0] != 1 else ''}/leg" if len(set(lots)) == 1
            else "lots " + "/".join(str(n) for n in lots))
    ax.set_title(f"{symbol} {_label(proposal.structure.value)} · expiry {when} · {size} "
                 f"· lot size {proposal.lot_size}", fontsize=9)
    ax.set_xlabel(f"{symbol} at expiry", fontsize=8)
    ax.set_ylabel("P&L at expiry (INR)", fontsize=8)
    return fig


def payoff_png(proposal: DecisionProposedV1, *, size_multiplier: float = 1.0) -> bytes:
    """The payoff diagram (:func:`payoff_figure`) as a PNG of :data:`IMAGE_SIZE` pixels.

    Agg canvas, no pyplot; the PNG carries no software/version metadata, so the same
    proposal gives the same bytes on the same matplotlib and fonts.
    """
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = payoff_figure(proposal, size_multiplier=size_multiplier)
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return buf.getvalue()


def prime_renderer() -> None:
    """Draw and encode a tiny figure with text, discarding it: the first figure of a
    process loads matplotlib's fonts and Agg (about half a second), which a warm-up
    (``GET /warmup``) takes ahead of the first signal. Pure: nothing is read or written."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([0.0, 1.0], [0.0, 1.0])
    ax.set_title("warm-up ₹")
    fig.savefig(io.BytesIO(), format="png", dpi=_DPI)


# ---------------------------------------------------------------------------- signal cards


def _title(dry_run: bool, body: str) -> str:
    return f"PAPER · {body} (paper-trading signal)" if dry_run else body


def _verdict_line(v: WallVerdict) -> str:
    mark = "BLOCKED" if v.blocked else "ok"
    return f"{v.wall}: {mark} ({v.reason_code}) {_clip(v.reason, 120)}".rstrip()


def _verdict_data(v: WallVerdict) -> dict[str, Any]:
    return {"wall": v.wall, "blocked": v.blocked, "reason_code": v.reason_code,
            "reason": v.reason, "numbers": {k: float(x) for k, x in v.numbers.items()}}


def _reasons(explanation: dict[str, Any]) -> list[dict[str, Any]]:
    items = explanation.get("signals")
    if not isinstance(items, list):
        return []
    found = []
    for item in items:
        if not isinstance(item, dict):
            continue
        c = _num(item.get("contribution"))
        name = item.get("name")
        if c is None or not isinstance(name, str):
            continue
        axis = item.get("axis")
        found.append({"name": name, "axis": axis if isinstance(axis, str) else None,
                      "contribution": c, "reason": str(item.get("reason") or "")})
    found.sort(key=lambda r: -abs(r["contribution"]))  # stable: ties keep their order
    return found[:TOP_REASONS]


def _regime_reason(explanation: dict[str, Any]) -> str | None:
    r = explanation.get("regime")
    if isinstance(r, dict) and isinstance(r.get("reason"), str) and r["reason"]:
        return r["reason"]
    return None


def _entry_and_exits(proposal: DecisionProposedV1, m: float
                     ) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]:
    """Entry zone, target and stop (see the module docstring's rule)."""
    lots = sized_lots(proposal, m)
    base = lots if any(lots) else tuple(leg.lots for leg in proposal.legs)
    copies = math.gcd(*base)
    net_per_copy = math.fsum((1.0 if leg.side == Side.BUY else -1.0) * n * float(leg.price)
                             for leg, n in zip(proposal.legs, base, strict=True)) / copies
    traded = math.gcd(*lots) if any(lots) else 0
    q = traded * proposal.lot_size
    if net_per_copy < 0:
        kind, premium = "credit", -net_per_copy
    elif net_per_copy > 0:
        kind, premium = "debit", net_per_copy
    else:
        kind, premium = "even", 0.0
    entry = {"kind": kind, "premium": premium, "zone_low": premium * (1 - ENTRY_TOLERANCE),
             "zone_high": premium * (1 + ENTRY_TOLERANCE), "tolerance": ENTRY_TOLERANCE,
             "copies": traded, "units": q, "premium_total": premium * q}
    if kind == "even" or q == 0:
        return entry, None, None
    max_profit = None if proposal.max_profit is None else proposal.max_profit * m
    max_loss = None if proposal.max_loss is None else proposal.max_loss * m
    if kind == "credit":
        profit, loss = 0.5 * premium * q, premium * q
        rule_t, rule_s = "buy back at 50% of the credit", "buy back at 2x the credit"
    else:
        profit, loss = premium * q, 0.5 * premium * q
        rule_t, rule_s = "sell at 2x the debit", "sell at 50% of the debit"
    t_capped = max_profit is not None and profit > max_profit
    s_capped = max_loss is not None and loss > max_loss
    if t_capped:
        profit = max_profit
    if s_capped:
        loss = max_loss
    sign = -1.0 if kind == "credit" else 1.0  # the close level moves with the P&L
    target = {"close_at": premium + sign * profit / q, "pnl": profit, "rule": rule_t,
              "capped": t_capped}
    stop = {"close_at": premium - sign * loss / q, "pnl": -loss, "rule": rule_s,
            "capped": s_capped}
    return entry, target, stop


def _check(signal: SignalApprovedV1 | SignalBlockedV1,
           proposal: DecisionProposedV1 | None) -> None:
    if not isinstance(signal, SignalApprovedV1 | SignalBlockedV1):
        raise TypeError(f"render_signal takes a signal, got {type(signal).__name__}")
    if proposal is None:
        return
    if proposal.proposal_id != signal.proposal_id or proposal.tenant_id != signal.tenant_id:
        raise ValueError(f"proposal {proposal.proposal_id} (tenant {proposal.tenant_id}) is "
                         f"not the signal's {signal.proposal_id} (tenant {signal.tenant_id})")


def render_signal(signal: SignalApprovedV1 | SignalBlockedV1,
                  proposal: DecisionProposedV1 | None, *, tenant_name: str = "",
                  image: bool = True) -> Card:
    """The card of a ``signal.approved`` or ``signal.blocked`` message.

    With the proposal (its id and tenant must be the signal's, else ``ValueError``): the
    structure, legs at the traded lots, expiry, entry zone, target and stop
    (:data:`TARGET_STOP_RULE`), max profit and loss, breakevens, win probability, net EV
    after costs, the top reasons and the regime, and (approved, ``image=True``) the payoff
    diagram PNG at the approved size. A blocked card names the blocking wall and its
    reason and lists every verdict briefly; it has no image. Without the proposal (e.g.
    an API check) it renders what the signal has. See the module docstring for the rules.
    """
    _check(signal, proposal)
    approved = isinstance(signal, SignalApprovedV1)
    m = signal.size_multiplier if isinstance(signal, SignalApprovedV1) else 1.0
    dry = signal.dry_run
    what = (f"{proposal.symbol} {_label(proposal.structure.value)}" if proposal is not None
            else "signal")
    if isinstance(signal, SignalApprovedV1):
        title = _title(dry, f"{what} approved")
    else:
        title = _title(dry, f"{what} blocked by {signal.blocked_by}")

    data: dict[str, Any] = {
        "kind": signal.topic, "dry_run": dry, "paper_notice": PAPER_NOTICE if dry else None,
        "tenant_id": str(signal.tenant_id), "tenant_name": tenant_name,
        "verdict_id": str(signal.verdict_id), "proposal_id": str(signal.proposal_id),
        "decided_at": signal.decided_at.isoformat(),
        "verdicts": [_verdict_data(v) for v in signal.verdicts],
    }
    text: list[str] = []
    body: list[str] = []  # HTML blocks
    if dry:
        text.append(PAPER_NOTICE)
        body.append('<p style="background:#fff3cd;border:1px solid #e0b000;padding:6px;'
                    f'font-weight:bold">{_esc(PAPER_NOTICE)}</p>')
    head = title.removeprefix("PAPER · ").removesuffix(" (paper-trading signal)")
    text.append(head)
    body.append(f"<h2>{_esc(head)}</h2>")
    if tenant_name:
        text.append(f"Tenant: {tenant_name}")
        body.append(f"<p>Tenant: {_esc(tenant_name)}</p>")

    if isinstance(signal, SignalBlockedV1):
        data.update(blocked_by=signal.blocked_by, reason_code=signal.reason_code,
                    reason=signal.reason)
        text.append(f"Blocked by {signal.blocked_by} ({signal.reason_code}): {signal.reason}")
        body.append(f"<p><b>Blocked by {_esc(signal.blocked_by)}</b> "
                    f"({_esc(signal.reason_code)}): {_esc(signal.reason)}</p>")

    png: bytes | None = None
    if proposal is not None:
        _trade(proposal, signal, m, approved, text, body, data)
        if approved and image:
            png = payoff_png(proposal, size_multiplier=m)
    elif isinstance(signal, SignalApprovedV1):
        data.update(size_multiplier=m, net_ev=signal.net_ev, total_costs=signal.total_costs)
        lines = [f"Size x{m:.2f}",
                 f"Net EV after costs {inr(signal.net_ev)} (costs {inr(signal.total_costs)})"]
        text.extend(lines)
        body.append("".join(f"<p>{_esc(x)}</p>" for x in lines))

    checks = [_verdict_line(v) for v in signal.verdicts]
    if checks and approved:
        line = "Checks passed: " + ", ".join(v.wall for v in signal.verdicts)
        text.append(line)
        body.append(f"<p>{_esc(line)}</p>")
    elif checks:
        text.append("Checks:")
        text.extend(f"  {c}" for c in checks)
        body.append("<p>Checks:</p><ul>" + "".join(
            f"<li>{'<b>' if v.blocked else ''}{_esc(c)}{'</b>' if v.blocked else ''}</li>"
            for v, c in zip(signal.verdicts, checks, strict=True)) + "</ul>")
    foot = f"Decided {_when(signal.decided_at)} · verdict {signal.verdict_id}"
    text.append(foot)
    body.append(f'<p style="color:#666;font-size:small">{_esc(foot)}</p>')
    html_doc = ('<html><body style="font-family:sans-serif">' + "\n".join(body)
                + "</body></html>")
    return Card(kind=signal.topic, title=title, text="\n".join(text), html=html_doc,
                data=data, image=png, dry_run=dry)


def _trade(proposal: DecisionProposedV1, signal: SignalApprovedV1 | SignalBlockedV1,
           m: float, approved: bool, text: list[str], body: list[str],
           data: dict[str, Any]) -> None:
    """The trade's lines (text, HTML) and fields (data), in place."""
    lots = sized_lots(proposal, m)
    expiries = sorted({leg.expiry for leg in proposal.legs})
    # a blocked trade has nothing to enter: no entry zone, target or stop
    entry, target, stop = _entry_and_exits(proposal, m) if approved else (None, None, None)
    max_profit = None if proposal.max_profit is None else proposal.max_profit * m
    max_loss = None if proposal.max_loss is None else proposal.max_loss * m
    bes = breakevens(proposal, size_multiplier=m if any(lots) else 1.0)
    reasons = _reasons(proposal.explanation)
    regime_reason = _regime_reason(proposal.explanation)
    gross = proposal.expected_gross_edge * m

    legs_data = [{"expiry": leg.expiry.isoformat(), "strike": float(leg.strike),
                  "option_type": leg.option_type.value, "side": leg.side.value,
                  "lots_proposed": leg.lots, "lots": n, "price": float(leg.price)}
                 for leg, n in zip(proposal.legs, lots, strict=True)]
    one_expiry = len(expiries) == 1
    leg_lines = [f"{leg.side.value.upper():<4} {n} lot{'s' if n != 1 else ''} "
                 f"{_strike(leg.strike)} {leg.option_type.value} @ {float(leg.price):.2f}"
                 + ("" if n == leg.lots else f" ({leg.lots} proposed)")
                 + ("" if one_expiry else f" ({leg.expiry})")
                 for leg, n in zip(proposal.legs, lots, strict=True)]
    data.update(symbol=proposal.symbol, structure=proposal.structure.value,
                expiries=[e.isoformat() for e in expiries], lot_size=proposal.lot_size,
                size_multiplier=m, legs=legs_data, entry=entry, target=target, stop=stop,
                target_stop_rule=TARGET_STOP_RULE if approved else None, max_profit=max_profit, max_loss=max_loss,
                breakevens=list(bes), win_probability=proposal.win_probability,
                expected_gross_edge=gross, regime=proposal.regime,
                regime_reason=regime_reason, reasons=reasons)

    lines = [f"Expiry {', '.join(str(e) for e in expiries)} · lot size {proposal.lot_size}"
             + (f" · size x{m:.2f}" if m != 1.0 else "")]
    if approved and not all(lots):
        lines.append("Warning: some legs round down to zero lots at this size")
    lines.append("Legs:")
    lines.extend(f"  {x}" for x in leg_lines)
    html_parts = [f"<p>{_esc(lines[0])}</p>"]
    if approved and not all(lots):
        html_parts.append(f"<p><b>{_esc(lines[1])}</b></p>")
    html_parts.append(
        "<table border=\"1\" cellpadding=\"3\" style=\"border-collapse:collapse\">"
        "<tr><th>side</th><th>lots</th><th>strike</th><th>type</th><th>price</th>"
        "<th>expiry</th></tr>" + "".join(
            f"<tr><td>{_esc(leg.side.value.upper())}</td><td>{n}</td>"
            f"<td>{_esc(_strike(leg.strike))}</td><td>{_esc(leg.option_type.value)}</td>"
            f"<td>{float(leg.price):.2f}</td><td>{_esc(leg.expiry)}</td></tr>"
            for leg, n in zip(proposal.legs, lots, strict=True)) + "</table>")

    tol = f"±{100 * ENTRY_TOLERANCE:g} %"
    info: list[str] = []
    if entry is not None and entry["kind"] == "even":
        info.append("Entry: net premium 0.00 (no target or stop for a zero-premium structure)")
    elif entry is not None:
        bound = (f"take at least {entry['zone_low']:.2f}" if entry["kind"] == "credit"
                 else f"pay at most {entry['zone_high']:.2f}")
        info.append(f"Entry: net {entry['kind']} {entry['premium']:.2f} per copy "
                    f"(zone {entry['zone_low']:.2f}–{entry['zone_high']:.2f}, {tol}: {bound})")
    if target is not None and stop is not None:
        info.append(f"Target: close at {target['close_at']:.2f} "
                    f"({inr(target['pnl'], sign=True)}; {target['rule']}"
                    f"{', capped at max profit' if target['capped'] else ''})")
        info.append(f"Stop: close at {stop['close_at']:.2f} "
                    f"({inr(stop['pnl'], sign=True)}; {stop['rule']}"
                    f"{', capped at max loss' if stop['capped'] else ''})")
    info.append(f"Max profit {_money(max_profit)} · max loss {_money(max_loss)}")
    if bes:
        info.append("Breakevens " + " / ".join(_pts(b) for b in bes))
    info.append(f"Win probability {_pct(proposal.win_probability)}")
    if isinstance(signal, SignalApprovedV1):
        info.append(f"Net EV after costs {inr(signal.net_ev)} (costs "
                    f"{inr(signal.total_costs)}; gross {inr(gross)})")
        data.update(net_ev=signal.net_ev, total_costs=signal.total_costs)
    else:
        info.append(f"Expected gross edge {inr(gross)} (before costs)")
    info.append(f"Regime: {proposal.regime}" + (f" ({regime_reason})" if regime_reason else ""))
    lines.extend(info)
    html_parts.append("<p>" + "<br>".join(_esc(x) for x in info) + "</p>")

    if reasons:
        lines.append("Top reasons:")
        rs = []
        for i, r in enumerate(reasons, 1):
            who = r["name"] + (f" ({r['axis']})" if r["axis"] else "")
            rs.append(f"{who} {r['contribution']:+.3f}" + (f": {r['reason']}"
                                                            if r["reason"] else ""))
            lines.append(f"  {i}. {rs[-1]}")
        html_parts.append("<p>Top reasons:</p><ol>"
                          + "".join(f"<li>{_esc(x)}</li>" for x in rs) + "</ol>")
    if approved:
        html_parts.append(f'<p style="font-size:small">Target/stop rule: '
                          f"{_esc(TARGET_STOP_RULE)}</p>")
    text.extend(lines)
    body.extend(html_parts)


# ---------------------------------------------------------------------------- events


def _event_card(kind: str, title: str, lines: list[str], data: dict[str, Any],
                dry_run: bool) -> Card:
    if dry_run:
        title = f"PAPER · {title}"
        lines = [PAPER_NOTICE_EVENT, *lines]
    data = {"kind": kind, "dry_run": dry_run,
            "paper_notice": PAPER_NOTICE_EVENT if dry_run else None, **data}
    head = lines[1] if dry_run else lines[0]
    parts = []
    if dry_run:
        parts.append('<p style="background:#fff3cd;border:1px solid #e0b000;padding:6px;'
                     f'font-weight:bold">{_esc(PAPER_NOTICE_EVENT)}</p>')
    parts.append(f"<h2>{_esc(head)}</h2>")
    rest = lines[2:] if dry_run else lines[1:]
    parts.append("<p>" + "<br>".join(_esc(x) for x in rest) + "</p>")
    html_doc = ('<html><body style="font-family:sans-serif">' + "\n".join(parts)
                + "</body></html>")
    return Card(kind=kind, title=title, text="\n".join(lines), html=html_doc, data=data,
                image=None, dry_run=dry_run)


def _metrics(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items())) or "none"


def render_event(message: Message, *, dry_run: bool = False) -> Card:
    """The card of a kill-switch, model or dead-delivery event.

    ``killswitch.tripped`` / ``.reset``: switch, scope (and key), tenant, reason, actor and
    time. ``model.promoted`` / ``.rejected``: model type and version (the replaced one),
    tenant or global, metrics and (rejected) the reason. ``notify.dead`` (for the
    operator): channel, attempts, error, delivery and source event. ``dry_run``: the
    recipient tenant is under the dry-run lock (the title gets ``PAPER ·`` and the text and
    HTML open with :data:`PAPER_NOTICE_EVENT`). A signal is passed to :func:`render_signal`
    without its proposal. Any other message raises ``TypeError``.
    """
    if isinstance(message, SignalApprovedV1 | SignalBlockedV1):
        return render_signal(message, None, image=False)
    if isinstance(message, KillSwitchTrippedV1 | KillSwitchResetV1):
        tripped = isinstance(message, KillSwitchTrippedV1)
        verb = "tripped" if tripped else "reset"
        scope = message.scope + (f":{message.scope_key}" if message.scope_key else "")
        who = str(message.tenant_id) if message.tenant_id else "all tenants"
        lines = [f"Kill switch {message.switch} {verb} ({scope})",
                 f"Scope: {scope} · tenant: {who}", f"Reason: {message.reason}",
                 f"By: {message.actor}", f"At: {_when(message.at)}"]
        if tripped:
            lines.append("New signals in this scope are blocked until it is reset.")
        data = {"switch": message.switch, "scope": message.scope,
                "scope_key": message.scope_key,
                "tenant_id": str(message.tenant_id) if message.tenant_id else None,
                "reason": message.reason, "actor": message.actor,
                "at": message.at.isoformat()}
        return _event_card(message.topic,
                           f"Kill switch {verb}: {message.switch} ({message.scope})",
                           lines, data, dry_run)
    if isinstance(message, ModelPromotedV1 | ModelRejectedV1):
        promoted = isinstance(message, ModelPromotedV1)
        name = f"{message.model_type} v{message.model_version}"
        who = f"tenant {message.tenant_id}" if message.tenant_id else "global"
        data = {"model_type": message.model_type, "model_version": message.model_version,
                "tenant_id": str(message.tenant_id) if message.tenant_id else None,
                "metrics": {k: float(v) for k, v in message.metrics.items()},
                "at": message.at.isoformat()}
        if isinstance(message, ModelPromotedV1):
            prev = message.previous_model_version
            head = f"Model {name} promoted" + (f" (replaces v{prev})" if prev else "")
            data["previous_model_version"] = prev
            lines = [head, f"Scope: {who}", f"Metrics: {_metrics(message.metrics)}"]
        else:
            head = f"Model {name} rejected"
            data["reason"] = message.reason
            lines = [head, f"Scope: {who}", f"Reason: {message.reason}",
                     f"Metrics: {_metrics(message.metrics)}"]
        lines.append(f"At: {_when(message.at)}")
        title = head if promoted else f"{head}: {_clip(message.reason, 80)}"
        return _event_card(message.topic, title, lines, data, dry_run)
    if isinstance(message, NotifyDeadV1):
        head = (f"Notification dead: {message.channel} gave up after {message.attempts} "
                f"attempt{'s' if message.attempts != 1 else ''}")
        lines = [head, f"Tenant: {message.tenant_id}", f"Channel: {message.channel}",
                 f"Attempts: {message.attempts}", f"Error: {message.error}",
                 f"Delivery: {message.delivery_id} · source event {message.source_event_id}",
                 f"At: {_when(message.at)}"]
        data = {"delivery_id": str(message.delivery_id), "tenant_id": str(message.tenant_id),
                "channel": message.channel, "source_event_id": message.source_event_id,
                "attempts": message.attempts, "error": message.error,
                "at": message.at.isoformat()}
        return _event_card(message.topic, head, lines, data, dry_run)
    raise TypeError(f"no card for {type(message).__name__}")
