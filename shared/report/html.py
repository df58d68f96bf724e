"""The session report as one self-contained HTML page (pure, apart from :func:`write_report`).

:func:`render_html` turns a :class:`~shared.report.model.SessionReport` into a single page:
inline CSS, no external URL, every plot a matplotlib PNG embedded as a base64 ``data:``
URI, and all content visible without JavaScript. The page's one tiny inline script only
records, after ``load``, how many images decoded (``<body data-rendered="ok/total">``), so
a headless browser test can prove that they did.

Sections (ids and headings in :data:`SECTIONS`): the header with the counters as tiles
(and the kill-switch state when the counters or notes have it); the spot path with the
signals marked (approved ▲ green, blocked ✕ red with the wall, one lane per tenant); the
IV smile by expiry, overlaid by time; the GEX profile by strike with the spot and the flip;
each approved signal as a card (legs, costs, net EV, max profit and loss, breakevens, paper
badge, reasons and its payoff diagram at expiry); gate firings by wall (table and bars);
paper P&L and drawdown per tenant; latencies per hop; the model versions used; strategy
statistics (PSR/DSR); notes. A section without data says ``nothing to show: ...``.

Units: money in rupees (INR), P&L after costs; strikes, spot and leg prices in index
points (rupees per unit of the underlying); implied volatility shown in percent; GEX in
rupee crore (1 crore = 1e7 rupees) of dealer gamma exposure per 1 % move; latencies in
milliseconds. Every time is shown in IST (Asia/Kolkata, UTC+05:30); a naive time is taken
as UTC.

matplotlib is imported lazily, inside the plotting functions, and never through pyplot:
each plot is a :class:`matplotlib.figure.Figure` drawn by the Agg canvas at :data:`DPI`,
cleared once saved (no global figure state, nothing left open). The payoff diagram is
notify's (:func:`shared.domain.notify.render.payoff_figure`, as the signal cards show it)
with the spot at entry added. Every text is escaped (:func:`html.escape`).
"""

from __future__ import annotations

import base64
import html
import io
import math
import struct
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from shared.domain.notify.render import inr
from shared.report.model import (
    ApprovedSignal,
    GateFiring,
    GexProfile,
    LegView,
    SessionReport,
    SignalMark,
    SmileSnapshot,
    TenantPnl,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "DPI",
    "IST",
    "MAX_GEX_PROFILES",
    "MAX_LANES",
    "MAX_PAYOFF_DIAGRAMS",
    "MAX_SMILE_EXPIRIES",
    "MAX_SMILE_TIMES",
    "SECTIONS",
    "drawdown",
    "max_drawdown",
    "payoff_at_expiry",
    "payoff_extremes",
    "render_html",
    "write_report",
]

try:
    from zoneinfo import ZoneInfo

    IST: timezone | ZoneInfo = ZoneInfo("Asia/Kolkata")
except Exception:  # pragma: no cover - no tz database: IST has had no DST since 1945
    IST = timezone(timedelta(hours=5, minutes=30), "IST")
"""Every time on the page is shown in India Standard Time."""

DPI = 100
"""Dots per inch of every plot: a figure of ``w x h`` inches is ``100 w x 100 h`` pixels."""
MAX_SMILE_EXPIRIES = 4
"""At most this many expiries (the nearest) get a smile plot."""
MAX_SMILE_TIMES = 6
"""At most this many times (evenly spaced) are overlaid on one expiry's smile plot."""
MAX_GEX_PROFILES = 4
"""At most this many GEX profiles (evenly spaced in time) are plotted."""
MAX_PAYOFF_DIAGRAMS = 12
"""Only the first this many approved signals get a payoff diagram (rendering time)."""
MAX_SIGNAL_ROWS = 200
"""The signal list under the spot plot shows at most this many rows."""
MAX_LANES = 8
"""At most this many tenants (the first named) get a lane under the spot plot."""

SECTIONS: tuple[tuple[str, str], ...] = (
    ("summary", "Summary"),
    ("spot", "Spot path and signals"),
    ("smile", "IV smile"),
    ("gex", "GEX profile"),
    ("approved", "Approved signals"),
    ("gates", "Gate firings by wall"),
    ("pnl", "Paper P&L and drawdown"),
    ("latency", "Latency per hop"),
    ("models", "Model versions used"),
    ("strategies", "Strategy statistics"),
    ("notes", "Notes"),
)
"""``(id, heading)`` of every section, in page order (headings unescaped)."""

_GREEN, _RED, _NAVY, _GREY, _BLUE = "#2e9e5b", "#d1495b", "#1f3b73", "#8a8f98", "#1f77b4"
_TENANT_COLOURS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#bcbd22")
_CRORE = 1e7
_COUNTER_ORDER = ("snapshots", "proposals", "approvals", "blocks", "no_trades", "deliveries")


# ---------------------------------------------------------------------------- pure maths


def _units(leg: LegView, lot_size: int) -> tuple[float, bool]:
    """Signed units (+ bought, - sold) and whether the leg is a call; ``ValueError`` if the
    side or option type is not one the model allows."""
    side, kind = leg.side.upper(), leg.option_type.upper()
    if side not in ("BUY", "SELL") or kind not in ("CE", "PE"):
        raise ValueError(f"leg {leg.side!r} {leg.option_type!r}: side must be BUY or SELL "
                         "and option type CE or PE")
    return (1.0 if side == "BUY" else -1.0) * leg.lots * lot_size, kind == "CE"


def payoff_at_expiry(legs: Sequence[LegView], lot_size: int,
                     spots: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """P&L at expiry of the whole position, before costs, at each underlying price.

    ``P(S) = sum_i u_i * (intrinsic_i(S) - price_i)`` with ``u_i = +-lots_i * lot_size``
    (+ bought, - sold) and ``intrinsic`` = ``max(S - K, 0)`` for a call, ``max(K - S, 0)``
    for a put; every leg is taken at its own intrinsic value (one expiry: the usual case)
    and the premium is undiscounted.

    Parameters
    ----------
    legs : sequence of LegView
        Strikes and prices in index points (rupees per unit), lots per leg.
    lot_size : int
        Units of the underlying per lot.
    spots : array_like
        Underlying prices at expiry, index points.

    Returns
    -------
    numpy.ndarray
        P&L in rupees, the shape of ``spots``.

    Raises
    ------
    ValueError
        A leg's side is not ``BUY``/``SELL`` or its option type not ``CE``/``PE``.
    """
    s = np.asarray(spots, dtype=np.float64)
    out = np.zeros_like(s)
    for leg in legs:
        u, call = _units(leg, lot_size)
        intrinsic = np.maximum(s - leg.strike, 0.0) if call else np.maximum(leg.strike - s, 0.0)
        out += u * (intrinsic - leg.price)
    return out


def payoff_extremes(legs: Sequence[LegView], lot_size: int) -> tuple[float | None, float | None]:
    """Exact maximum profit and maximum loss at expiry of :func:`payoff_at_expiry`.

    The payoff is piecewise linear in ``S >= 0`` with kinks at the strikes, so its extremes
    are at ``S = 0`` or at a strike, unless the slope beyond the highest strike (the sum of
    the calls' units) makes one side unbounded.

    Returns
    -------
    tuple of (float or None, float or None)
        ``(max_profit, max_loss)`` in rupees, the loss as a positive amount (negative when
        the position cannot lose); ``None`` where unbounded. ``(0.0, 0.0)`` without legs.
    """
    if not legs:
        return 0.0, 0.0
    knots = np.unique(np.asarray([0.0, *(leg.strike for leg in legs)], dtype=np.float64))
    values = payoff_at_expiry(legs, lot_size, knots)
    slope = math.fsum(u for u, call in (_units(leg, lot_size) for leg in legs) if call)
    best = None if slope > 0 else float(values.max())
    worst = None if slope < 0 else float(-values.min())
    return best, worst


def _breakevens(legs: Sequence[LegView], lot_size: int) -> tuple[float, ...]:
    """Where the payoff at expiry changes sign, index points ascending (exact; see
    :func:`shared.domain.risk.odds.breakevens`)."""
    from shared.domain.risk.odds import breakevens

    pairs = [_units(leg, lot_size) for leg in legs]
    if not any(u for u, _ in pairs):
        return ()
    net = math.fsum(u * leg.price for (u, _), leg in zip(pairs, legs, strict=True))
    return breakevens([u for u, _ in pairs], [leg.strike for leg in legs],
                      [c for _, c in pairs], net)


def drawdown(pnl: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Drawdown of a cumulative P&L series: the fall from its running peak.

    The peak starts at 0 (the session's P&L before its first point), so a series that
    opens with a loss is already in drawdown.

    Parameters
    ----------
    pnl : array_like
        Cumulative P&L, rupees, in time order.

    Returns
    -------
    numpy.ndarray
        ``max(0, max_{j<=i} pnl_j) - pnl_i`` at each point, rupees, ``>= 0``.
    """
    x = np.asarray(pnl, dtype=np.float64)
    if x.size == 0:
        return x.copy()
    peak = np.maximum.accumulate(np.maximum(x, 0.0))
    return peak - x


def max_drawdown(pnl: npt.ArrayLike) -> float:
    """The largest :func:`drawdown` of a cumulative P&L series, rupees (0 when empty).

    >>> max_drawdown([0, 100, 50, 120, 60])
    60.0
    """
    dd = drawdown(pnl)
    return float(dd.max()) if dd.size else 0.0


# ---------------------------------------------------------------------------- formatting


def _esc(x: object) -> str:
    return html.escape(str(x), quote=True)


def _ist(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(IST)


def _naive_ist(dt: datetime) -> datetime:
    """IST wall-clock time without tzinfo: what the plots' time axes show."""
    return _ist(dt).replace(tzinfo=None)


def _hm(dt: datetime) -> str:
    return _ist(dt).strftime("%H:%M")


def _when(dt: datetime) -> str:
    return _ist(dt).strftime("%Y-%m-%d %H:%M IST")


def _pts(x: float, nd: int = 2) -> str:
    return f"{x:,.{nd}f}" if math.isfinite(x) else "–"


def _rupees(x: float | None, *, sign: bool = False) -> str:
    if x is None:
        return "unbounded"
    return inr(x, sign=sign) if math.isfinite(x) else "–"


def _strike(k: float) -> str:
    return format(Decimal(repr(float(k))).normalize(), "f") if math.isfinite(k) else "–"


def _label(structure: str | None) -> str:
    return (structure or "–").replace("_", " ")


def _mpl(text: object) -> str:
    """Text safe for a matplotlib label: ``$`` would start mathtext."""
    return str(text).replace("$", r"\$")


def _finite(*xs: float) -> bool:
    return all(isinstance(x, int | float) and math.isfinite(x) for x in xs)


def _empty(why: str) -> str:
    return f'<p class="empty">nothing to show: {_esc(why)}</p>'


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], *, cls: str = "") -> str:
    """A table of already-escaped cells (the header cells are escaped here)."""
    th = "".join(f"<th>{_esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _even(items: Sequence, n: int) -> list:
    """At most ``n`` items, evenly spaced, keeping the first and the last."""
    if len(items) <= n:
        return list(items)
    idx = sorted({int(round(i)) for i in np.linspace(0, len(items) - 1, n)})
    return [items[i] for i in idx]


# ---------------------------------------------------------------------------- figures


def _figure(width_px: int, height_px: int) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, layout="constrained")


def _png(fig: Figure) -> bytes:
    """The figure as PNG bytes (Agg, :data:`DPI`, no software metadata); the figure is
    cleared afterwards."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    try:
        FigureCanvasAgg(fig)
        engine = fig.get_layout_engine()
        if engine is not None:
            # lay out once, then freeze: savefig would otherwise lay out twice (its
            # draw-disabled pass and the drawing), a third of a plot's time
            engine.execute(fig)
            fig.set_layout_engine(None)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
        return buf.getvalue()
    finally:
        fig.clear()


def _img(png: bytes, alt: str) -> str:
    """An ``<img>`` with the PNG as a base64 data URI and its pixel size."""
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    data = base64.b64encode(png).decode("ascii")
    return (f'<img src="data:image/png;base64,{data}" alt="{_esc(alt)}" '
            f'width="{width}" height="{height}">')


def _style_axes(ax, *, grid: bool = True) -> None:
    ax.tick_params(labelsize=8)
    if grid:
        ax.grid(True, linewidth=0.3, alpha=0.5)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _time_axis(ax) -> None:
    from matplotlib.dates import AutoDateLocator, DateFormatter

    ax.xaxis.set_major_locator(AutoDateLocator(minticks=5, maxticks=12))
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M"))


def _thousands(ax, axis: str = "y", nd: int = 0) -> None:
    from matplotlib.ticker import FuncFormatter

    fmt = FuncFormatter(lambda v, _: f"{v:,.{nd}f}")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def _tenants(report: SessionReport) -> list[str]:
    """Every tenant the report names, in order of first appearance."""
    seen: dict[str, None] = {}
    for name in ([s.tenant for s in report.signals] + [a.tenant for a in report.approved]
                 + [g.tenant for g in report.gate_firings] + [p.tenant for p in report.pnl]):
        seen.setdefault(name, None)
    return list(seen)


def _tenant_colour(report: SessionReport) -> dict[str, str]:
    return {t: _TENANT_COLOURS[i % len(_TENANT_COLOURS)]
            for i, t in enumerate(_tenants(report))}


def _spot_png(report: SessionReport) -> bytes | None:
    """Spot path (index points, IST) with the signals marked, and one lane per tenant."""
    pts = sorted(((p.at, p.spot) for p in report.spot_path if _finite(p.spot)),
                 key=lambda x: x[0])
    if not pts:
        return None
    from matplotlib.dates import date2num
    from matplotlib.lines import Line2D

    times = [_naive_ist(t) for t, _ in pts]
    spots = np.asarray([s for _, s in pts])
    x_spot = np.asarray(date2num(times))
    marks = sorted(report.signals, key=lambda s: s.at)
    tenants = list(dict.fromkeys(s.tenant for s in marks))[:MAX_LANES]
    lanes = len(tenants)

    fig = _figure(1200, 400 + 26 * lanes + (30 if lanes else 0))
    if lanes:
        ax, lane = fig.subplots(2, 1, sharex=True, gridspec_kw={
            "height_ratios": [5.0, 0.8 + 0.45 * lanes]})
    else:
        ax, lane = fig.subplots(), None
    ax.plot(times, spots, color=_NAVY, linewidth=1.2)
    ax.fill_between(times, spots, float(spots.min()), color=_NAVY, alpha=0.06, linewidth=0)
    for outcome, marker, colour, size in (("approved", "^", _GREEN, 70),
                                          ("blocked", "X", _RED, 55)):
        chosen = [s for s in marks if s.outcome == outcome]
        if chosen:
            xs = np.asarray(date2num([_naive_ist(s.at) for s in chosen]))
            ax.scatter(xs, np.interp(xs, x_spot, spots), marker=marker, s=size, color=colour,
                       edgecolors="white", linewidths=0.6, zorder=3)
    n_app = sum(s.outcome == "approved" for s in marks)
    n_blk = sum(s.outcome == "blocked" for s in marks)
    ax.legend(handles=[
        Line2D([], [], color=_NAVY, linewidth=1.2, label=f"{_mpl(report.symbol)} spot"),
        Line2D([], [], marker="^", linestyle="", color=_GREEN, label=f"approved ({n_app})"),
        Line2D([], [], marker="X", linestyle="", color=_RED, label=f"blocked ({n_blk})"),
    ], fontsize=8, loc="best", frameon=False)
    ax.set_ylabel("spot (index points)", fontsize=8)
    _thousands(ax)
    _style_axes(ax)
    ax.set_title(f"{_mpl(report.symbol)} on {report.session_date.isoformat()} "
                 "· signals by outcome", fontsize=10)
    if lane is None:
        _time_axis(ax)
        ax.set_xlabel("time (IST)", fontsize=8)
        return _png(fig)

    row = {t: lanes - 1 - i for i, t in enumerate(tenants)}  # the first tenant on top
    xy: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    last_label: dict[str, tuple[float, str]] = {}
    for s in (m for m in marks if m.tenant in row):
        x, y = float(date2num(_naive_ist(s.at))), row[s.tenant]
        kind = s.outcome if s.outcome in ("approved", "blocked") else "other"
        xy[kind][0].append(x)
        xy[kind][1].append(y)
        if kind == "blocked":
            wall = s.wall or "?"
            prev = last_label.get(s.tenant)
            # label a wall where it starts firing, not at every repeat close by
            if prev is None or prev[1] != wall or x - prev[0] > 25 / 1440:
                lane.annotate(_mpl(wall), (x, y), xytext=(0, 6), textcoords="offset points",
                              fontsize=6.5, color=_RED, ha="center", rotation=30)
                last_label[s.tenant] = (x, wall)
    for kind, marker, size, colour, z in (("other", ".", 12, _GREY, 2),
                                          ("approved", "^", 50, _GREEN, 3),
                                          ("blocked", "X", 40, _RED, 3)):
        if kind in xy:
            lane.scatter(*xy[kind], marker=marker, s=size, color=colour, zorder=z)
    lane.set_yticks([row[t] for t in tenants], [_mpl(t) for t in tenants], fontsize=8)
    lane.set_ylim(-0.6, lanes - 0.1)
    lane.set_xlabel("time (IST) · lanes: ▲ approved, ✕ blocked (wall), · no trade",
                    fontsize=8)
    _time_axis(lane)
    _style_axes(lane, grid=False)
    lane.grid(True, axis="x", linewidth=0.3, alpha=0.5)
    return _png(fig)


def _smile_png(symbol: str, expiry: date, shots: Sequence[SmileSnapshot]) -> bytes | None:
    """One expiry's smiles overlaid by time: IV (%) against strike, forwards dotted."""
    from matplotlib import colormaps

    curves = []
    for shot in shots:
        pairs = sorted((k, v) for k, v in zip(shot.strikes, shot.ivs, strict=False)
                       if _finite(k, v) and v > 0)
        if len(pairs) >= 2:
            curves.append((shot, pairs))
    if not curves:
        return None
    fig = _figure(600, 360)
    ax = fig.subplots()
    cmap = colormaps["viridis"]
    for i, (shot, pairs) in enumerate(curves):
        colour = cmap(0.85 * i / max(len(curves) - 1, 1))
        ax.plot([k for k, _ in pairs], [100 * v for _, v in pairs], color=colour,
                linewidth=1.4, marker="o", markersize=2.2,
                label=f"{_hm(shot.at)} (fwd {shot.forward:,.0f})")
        if _finite(shot.forward):
            ax.axvline(shot.forward, color=colour, linewidth=0.7, linestyle=":")
    days = (expiry - _ist(curves[0][0].at).date()).days
    ax.set_title(f"{_mpl(symbol)} smile · expiry {expiry.isoformat()} ({days} d)",
                 fontsize=10)
    ax.set_xlabel("strike (index points); dotted: forward", fontsize=8)
    ax.set_ylabel("implied volatility (%)", fontsize=8)
    _thousands(ax, "x")
    _style_axes(ax)
    ax.legend(fontsize=7, frameon=False, title="IST", title_fontsize=7)
    return _png(fig)


def _gex_png(symbol: str, g: GexProfile) -> bytes | None:
    """GEX by strike (rupee crore per 1 % move), positive green, negative red, with the
    spot (dashed) and the flip (dotted)."""
    pairs = sorted((k, v) for k, v in zip(g.strikes, g.gex, strict=False) if _finite(k, v))
    if not pairs:
        return None
    ks = np.asarray([k for k, _ in pairs])
    vs = np.asarray([v for _, v in pairs]) / _CRORE
    width = 0.8 * float(np.diff(ks).min()) if ks.size > 1 else 1.0
    fig = _figure(600, 340)
    ax = fig.subplots()
    ax.bar(ks, vs, width=width, color=[_GREEN if v >= 0 else _RED for v in vs], alpha=0.85)
    ax.axhline(0.0, color="#444444", linewidth=0.8)
    if _finite(g.spot):
        ax.axvline(g.spot, color=_BLUE, linewidth=1.1, linestyle="--",
                   label=f"spot {g.spot:,.0f}")
    if g.flip is not None and _finite(g.flip):
        ax.axvline(g.flip, color="#222222", linewidth=1.1, linestyle=":",
                   label=f"flip {g.flip:,.0f}")
    ax.set_title(f"{_mpl(symbol)} GEX at {_hm(g.at)} IST · net "
                 f"{float(vs.sum()):,.0f} Cr", fontsize=10)
    ax.set_xlabel("strike (index points)", fontsize=8)
    ax.set_ylabel("GEX (INR crore per 1% move)", fontsize=8)
    _thousands(ax, "x")
    _style_axes(ax)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, frameon=False)
    return _png(fig)


def _gates_png(firings: Sequence[GateFiring], colours: dict[str, str]) -> bytes | None:
    """Blocks (solid) and reductions (hatched) by wall and tenant, horizontal bars."""
    totals: dict[str, int] = defaultdict(int)
    cells: dict[tuple[str, str], tuple[int, int]] = {}
    for f in firings:
        b, r = cells.get((f.wall, f.tenant), (0, 0))
        cells[(f.wall, f.tenant)] = (b + f.blocked, r + f.reduced)
        totals[f.wall] += f.blocked + f.reduced
    if not any(totals.values()):
        return None
    walls = sorted(totals, key=lambda w: (-totals[w], w))
    tenants = list(dict.fromkeys(f.tenant for f in firings))
    height = 0.8 / len(tenants)
    fig = _figure(760, min(900, 90 + 22 * len(walls) * len(tenants)))
    ax = fig.subplots()
    for j, t in enumerate(tenants):
        ys = [len(walls) - 1 - i - 0.4 + height * (j + 0.5) for i in range(len(walls))]
        blocked = [cells.get((w, t), (0, 0))[0] for w in walls]
        reduced = [cells.get((w, t), (0, 0))[1] for w in walls]
        colour = colours.get(t, _GREY)
        ax.barh(ys, blocked, height=height * 0.92, color=colour, label=f"{_mpl(t)} blocked")
        if any(reduced):
            ax.barh(ys, reduced, left=blocked, height=height * 0.92, color=colour, alpha=0.35,
                    hatch="///", edgecolor="white", label=f"{_mpl(t)} reduced")
        for y, b, r in zip(ys, blocked, reduced, strict=True):
            if b + r:
                ax.annotate(f"{b}" + (f"+{r}" if r else ""), (b + r, y), xytext=(3, 0),
                            textcoords="offset points", va="center", fontsize=7)
    ax.set_yticks(range(len(walls)), [_mpl(w) for w in reversed(walls)], fontsize=8)
    ax.set_xlabel("proposals blocked (solid) / reduced (hatched)", fontsize=8)
    ax.margins(x=0.08)
    _style_axes(ax)
    ax.grid(False, axis="y")
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    return _png(fig)


def _pnl_png(p: TenantPnl, colour: str) -> bytes | None:
    """Cumulative paper P&L (rupees) and its drawdown underneath, against IST time."""
    pts = sorted(((q.at, q.pnl) for q in p.points if _finite(q.pnl)), key=lambda x: x[0])
    if not pts:
        return None
    times = [_naive_ist(t) for t, _ in pts]
    pnl = np.asarray([v for _, v in pts])
    dd = drawdown(pnl)
    fig = _figure(600, 380)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2.2, 1.0]})
    top.plot(times, pnl, color=colour, linewidth=1.4)
    top.fill_between(times, pnl, 0.0, where=pnl >= 0, color=_GREEN, alpha=0.18, linewidth=0,
                     interpolate=True)
    top.fill_between(times, pnl, 0.0, where=pnl <= 0, color=_RED, alpha=0.18, linewidth=0,
                     interpolate=True)
    top.axhline(0.0, color="#444444", linewidth=0.8)
    mode = "dry-run lock" if p.dry_run else "live"
    top.set_title(f"{_mpl(p.tenant)} ({mode}) · close {float(pnl[-1]):+,.0f} INR",
                  fontsize=10)
    top.set_ylabel("cumulative P&L (INR)", fontsize=8)
    bottom.fill_between(times, -dd, 0.0, color=_RED, alpha=0.45, linewidth=0)
    bottom.plot(times, -dd, color=_RED, linewidth=0.8)
    i = int(np.argmax(dd))
    if dd[i] > 0:
        bottom.annotate(f"max {dd[i]:,.0f}", (times[i], -dd[i]), xytext=(4, 2),
                        textcoords="offset points", fontsize=7, color="#7a1020")
    bottom.set_ylabel("drawdown (INR)", fontsize=8)
    bottom.set_xlabel("time (IST)", fontsize=8)
    for ax in (top, bottom):
        _thousands(ax)
        _style_axes(ax)
    _time_axis(bottom)
    return _png(fig)


def _payoff_png(sig: ApprovedSignal) -> bytes:
    """notify's payoff diagram of the signal's legs, with the spot at entry added.

    Raises ``ValueError`` (pydantic's ``ValidationError`` included) when the legs cannot
    make a proposal (e.g. zero lots, a non-positive strike).
    """
    import uuid

    from shared.contracts import DecisionProposedV1, Leg, OptionType, Side, Structure
    from shared.domain.notify.render import payoff_figure

    try:
        structure = Structure(sig.structure)
    except ValueError:
        structure = Structure.CUSTOM
    for leg in sig.legs:
        _units(leg, sig.lot_size)  # the sides and types this module accepts
    nil = uuid.UUID(int=0)
    proposal = DecisionProposedV1(
        proposal_id=nil, tenant_id=nil, snapshot_id=nil, symbol=sig.symbol,
        structure=structure, lot_size=sig.lot_size,
        legs=tuple(Leg(expiry=leg.expiry, strike=Decimal(repr(float(leg.strike))),
                       option_type=OptionType(leg.option_type.upper()),
                       side=Side(leg.side.lower()), lots=leg.lots,
                       price=Decimal(repr(float(leg.price)))) for leg in sig.legs),
        max_profit=sig.max_profit if _finite(sig.max_profit) else None,
        max_loss=sig.max_loss if _finite(sig.max_loss) else None,
        expected_gross_edge=sig.net_ev + sig.costs if _finite(sig.net_ev, sig.costs) else 0.0,
        win_probability=0.5, regime="n/a", proposed_at=_ist(sig.at))
    fig = payoff_figure(proposal)
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    if _finite(sig.spot) and lo <= sig.spot <= hi:
        ax.axvline(sig.spot, color=_BLUE, linewidth=0.9, linestyle="--")
        ax.annotate(f"spot {sig.spot:,.0f}", xy=(sig.spot, 0.0),
                    xycoords=("data", "axes fraction"), xytext=(3, 4),
                    textcoords="offset points", fontsize=7, color=_BLUE)
    return _png(fig)


# ---------------------------------------------------------------------------- sections


def _section(key: str, body: str) -> str:
    heading = dict(SECTIONS)[key]
    return f'<section id="{key}"><h2>{_esc(heading)}</h2>\n{body}\n</section>'


def _kill_switch(report: SessionReport) -> tuple[str, str] | None:
    """``(value, detail)`` of the kill-switch tile, from the counters or the notes."""
    counts = {k: v for k, v in report.counters.items() if "kill" in k.lower()}
    if counts:
        n = sum(counts.values())
        detail = ", ".join(
            f"{k.lower().replace('kill_switch', '').strip('_').replace('_', ' ') or 'count'} "
            f"{v:,}" for k, v in sorted(counts.items()))
        return ("tripped" if n else "clear"), detail
    notes = [n for n in report.notes if "kill" in n.lower()]
    if notes:
        return "see notes", notes[-1]
    return None


def _summary(report: SessionReport) -> str:
    keys = [k for k in _COUNTER_ORDER if k in report.counters]
    keys += sorted(k for k in report.counters if k not in keys and "kill" not in k.lower())
    tiles = [f'<div class="tile"><div class="v">{report.counters[k]:,}</div>'
             f'<div class="k">{_esc(k.replace("_", " "))}</div></div>' for k in keys]
    ks = _kill_switch(report)
    if ks is not None:
        state, detail = ks
        cls = "tile alert" if state == "tripped" else "tile"
        tiles.append(f'<div class="{cls}"><div class="v">{_esc(state)}</div>'
                     f'<div class="k">kill switch · {_esc(detail)}</div></div>')
    if not tiles:
        return _empty("no counters were recorded for this session.")
    return f'<div class="tiles">{"".join(tiles)}</div>'


def _spot_section(report: SessionReport) -> str:
    parts = []
    png = _spot_png(report)
    marks = sorted(report.signals, key=lambda s: s.at)
    if png is None:
        parts.append(_empty("the session has no spot points."))
    else:
        parts.append(_img(png, f"{report.symbol} spot path with signals"))
        spots = [p.spot for p in sorted(report.spot_path, key=lambda p: p.at) if _finite(p.spot)]
        change = (f" · change {100 * (spots[-1] / spots[0] - 1):+.2f} %" if spots[0] > 0
                  else "")
        parts.append(f'<p class="meta">open {_pts(spots[0])} · high {_pts(max(spots))} · '
                     f"low {_pts(min(spots))} · close {_pts(spots[-1])}{change} · "
                     f"{len(spots):,} points</p>")
        n_tenants = len({s.tenant for s in marks})
        if n_tenants > MAX_LANES:
            parts.append(f'<p class="meta">Lanes for the first {MAX_LANES} of {n_tenants} '
                         "tenants; the spot plot marks every signal.</p>")
    if not marks:
        parts.append(_empty("no signal was decided in this session."))
        return "".join(parts)
    shown = [s for s in marks if s.outcome != "no_trade"]
    n_nt = len(marks) - len(shown)
    icon = {"approved": ("ok", "▲"), "blocked": ("bad", "✕")}

    def outcome(s: SignalMark) -> str:
        cls, mark = icon.get(s.outcome, ("", "·"))
        return f'<span class="{cls}">{mark} {_esc(s.outcome)}</span>'

    rows = [(_esc(_hm(s.at)), _esc(s.tenant), _esc(_label(s.structure)), outcome(s),
             _esc(s.wall or "")) for s in shown[:MAX_SIGNAL_ROWS]]
    more = (f'<p class="meta">… and {len(shown) - MAX_SIGNAL_ROWS:,} more</p>'
            if len(shown) > MAX_SIGNAL_ROWS else "")
    summary = (f"Signals: {len(shown):,} approved or blocked"
               + (f", {n_nt:,} without a trade" if n_nt else ""))
    table = (_table(("time (IST)", "tenant", "structure", "outcome", "wall"), rows)
             if rows else _empty("no signal was approved or blocked."))
    parts.append(f"<details><summary>{_esc(summary)}</summary>{table}{more}</details>")
    return "".join(parts)


def _atm_and_skew(shot: SmileSnapshot) -> tuple[float, float]:
    """ATM IV at the forward and the 95/105 skew (IV at 0.95 F minus IV at 1.05 F), both in
    volatility points (%); NaN where the strikes do not cover them."""
    pairs = sorted((k, v) for k, v in zip(shot.strikes, shot.ivs, strict=False)
                   if _finite(k, v) and v > 0)
    if len(pairs) < 2 or not _finite(shot.forward) or shot.forward <= 0:
        return math.nan, math.nan
    ks = np.asarray([k for k, _ in pairs])
    vs = np.asarray([v for _, v in pairs])

    def at(k: float) -> float:
        return float(np.interp(k, ks, vs)) * 100 if ks[0] <= k <= ks[-1] else math.nan

    return at(shot.forward), at(0.95 * shot.forward) - at(1.05 * shot.forward)


def _smile_section(report: SessionReport) -> str:
    by_expiry: dict[date, list[SmileSnapshot]] = defaultdict(list)
    for s in report.smiles:
        by_expiry[s.expiry].append(s)
    if not by_expiry:
        return _empty("no implied-volatility smile was recorded.")
    expiries = sorted(by_expiry)[:MAX_SMILE_EXPIRIES]
    imgs, rows = [], []
    for e in expiries:
        shots = _even(sorted(by_expiry[e], key=lambda s: s.at), MAX_SMILE_TIMES)
        png = _smile_png(report.symbol, e, shots)
        imgs.append(_img(png, f"IV smile, expiry {e.isoformat()}") if png else
                    _empty(f"no valid quotes for expiry {e.isoformat()}."))
        for s in shots:
            atm, skew = _atm_and_skew(s)
            rows.append((_esc(e.isoformat()), _esc(_hm(s.at)), _pts(s.forward),
                         _pts(atm), _pts(skew), f"{len(s.strikes):,}"))
    dropped = len(by_expiry) - len(expiries)
    note = (f'<p class="meta">{dropped} later expir{"y" if dropped == 1 else "ies"} not '
            "plotted.</p>" if dropped else "")
    return (f'<div class="grid">{"".join(f"<div>{i}</div>" for i in imgs)}</div>' + note
            + _table(("expiry", "time (IST)", "forward", "ATM IV (%)",
                      "skew 95/105 (vol pts)", "strikes"), rows, cls="num"))


def _gex_section(report: SessionReport) -> str:
    if not report.gex:
        return _empty("no GEX profile was recorded.")
    profiles = _even(sorted(report.gex, key=lambda g: g.at), MAX_GEX_PROFILES)
    imgs, rows = [], []
    for g in profiles:
        png = _gex_png(report.symbol, g)
        imgs.append(_img(png, f"GEX profile at {_hm(g.at)} IST") if png else
                    _empty(f"no valid GEX values at {_hm(g.at)} IST."))
        net = math.fsum(v for v in g.gex if _finite(v)) / _CRORE
        if g.flip is not None and _finite(g.flip, g.spot):
            regime = ("spot above flip: positive gamma (dealers damp moves)"
                      if g.spot >= g.flip else
                      "spot below flip: negative gamma (dealers amplify moves)")
        else:
            regime = "no flip in range"
        rows.append((_esc(_hm(g.at)), _pts(g.spot), _pts(net, 1),
                     _pts(g.flip) if g.flip is not None else "–", _esc(regime)))
    note = (f'<p class="meta">{len(report.gex) - len(profiles)} more profiles not plotted '
            "(evenly spaced times shown).</p>" if len(report.gex) > len(profiles) else "")
    return (f'<div class="grid">{"".join(f"<div>{i}</div>" for i in imgs)}</div>' + note
            + _table(("time (IST)", "spot", "net GEX (INR Cr / 1%)", "flip", "reading"),
                     rows, cls="num"))


def _card(sig: ApprovedSignal, diagram: bool) -> str:
    badge = ('<span class="badge paper">PAPER · dry-run lock</span>' if sig.paper
             else '<span class="badge live">live</span>')
    head = (f'<div class="card-head"><b>{_esc(_hm(sig.at))} IST</b> · '
            f"{_esc(sig.symbol)} {_esc(_label(sig.structure))} · {_esc(sig.tenant)} "
            f"{badge}</div>")
    legs = _table(("side", "lots", "strike", "type", "expiry", "price (pts)"), [
        (_esc(leg.side.upper()), f"{leg.lots:,}", _esc(_strike(leg.strike)),
         _esc(leg.option_type.upper()), _esc(leg.expiry.isoformat()), _pts(leg.price))
        for leg in sig.legs], cls="legs num") if sig.legs else _empty("the signal has no legs.")

    try:
        implied = payoff_extremes(sig.legs, sig.lot_size)
        bes = _breakevens(sig.legs, sig.lot_size)
        net = -math.fsum(_units(leg, sig.lot_size)[0] * leg.price for leg in sig.legs)
        problem = None
    except ValueError as e:
        implied, bes, net, problem = None, (), math.nan, str(e)

    def checked(value: float, legs_value: float | None) -> str:
        text = _rupees(value)
        if implied is None or not _finite(value):
            return text
        if legs_value is None:
            return f'{text} <span class="warn">(legs imply unbounded)</span>'
        if abs(value - legs_value) > max(1.0, 0.005 * abs(legs_value)):
            return f'{text} <span class="warn">(legs imply {_rupees(legs_value)})</span>'
        return text

    kv = [("Spot at entry", _pts(sig.spot)),
          ("Net premium", "–" if not _finite(net) else
           f"{_rupees(abs(net))} {'credit' if net > 0 else 'debit' if net < 0 else 'even'}"),
          ("Max profit", checked(sig.max_profit, implied[0] if implied else None)),
          ("Max loss", checked(sig.max_loss, implied[1] if implied else None)),
          ("Breakevens", " / ".join(_pts(b) for b in bes) or "–"),
          ("Costs (round trip)", _rupees(sig.costs)),
          ("Net EV after costs",
           f'<span class="{"ok" if sig.net_ev >= 0 else "bad"}">'
           f"{_rupees(sig.net_ev, sign=True)}</span>"),
          ("Lot size", f"{sig.lot_size:,}")]
    info = "".join(f"<tr><th>{_esc(k)}</th><td>{v}</td></tr>" for k, v in kv)
    reasons = ("<ul class=\"reasons\">" + "".join(f"<li>{_esc(r)}</li>" for r in sig.reasons)
               + "</ul>") if sig.reasons else '<p class="meta">no reasons recorded.</p>'
    if problem is not None:
        picture = _empty(f"payoff unavailable: {problem}")
    elif not diagram:
        picture = _empty(f"payoff diagram omitted: only the first {MAX_PAYOFF_DIAGRAMS} "
                         "approved signals get one.")
    elif not sig.legs:
        picture = _empty("no legs, so no payoff diagram.")
    else:
        try:
            picture = _img(_payoff_png(sig), f"payoff at expiry, {sig.structure} "
                                             f"{_hm(sig.at)} IST")
        except ValueError as e:
            picture = _empty(f"payoff diagram unavailable: {e}")
    return (f'<article class="card">{head}<div class="card-body"><div>{legs}'
            f'<table class="kv">{info}</table>{reasons}</div>'
            f'<div class="payoff">{picture}</div></div></article>')


def _approved_section(report: SessionReport) -> str:
    if not report.approved:
        return _empty("no signal was approved in this session.")
    sigs = sorted(report.approved, key=lambda s: s.at)
    total_ev = math.fsum(s.net_ev for s in sigs if _finite(s.net_ev))
    total_costs = math.fsum(s.costs for s in sigs if _finite(s.costs))
    paper = sum(s.paper for s in sigs)
    head = (f'<p class="meta">{len(sigs)} approved ({paper} paper) · net EV after costs '
            f"{_esc(_rupees(total_ev, sign=True))} · costs {_esc(_rupees(total_costs))}. "
            "Payoff diagrams: P&amp;L at expiry of the whole position before costs; "
            "dashed: spot at entry.</p>")
    return head + "".join(_card(s, i < MAX_PAYOFF_DIAGRAMS) for i, s in enumerate(sigs))


def _gates_section(report: SessionReport) -> str:
    firings = [f for f in report.gate_firings if f.blocked or f.reduced]
    if not firings:
        return _empty("no wall or kill switch blocked or reduced a proposal.")
    tenants = list(dict.fromkeys(f.tenant for f in firings))
    cells: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for f in firings:
        cells[(f.wall, f.tenant)][0] += f.blocked
        cells[(f.wall, f.tenant)][1] += f.reduced
    walls = sorted({f.wall for f in firings},
                   key=lambda w: (-sum(sum(cells[(w, t)]) for t in tenants), w))
    rows = []
    for w in walls:
        row = [_esc(w)]
        for t in tenants:
            b, r = cells[(w, t)]
            row.append(f"{b:,}" + (f" <small>(+{r:,} reduced)</small>" if r else ""))
        row.append(f"{sum(cells[(w, t)][0] for t in tenants):,}")
        rows.append(row)
    table = _table(("wall", *(f"{t}: blocked" for t in tenants), "total blocked"), rows,
                   cls="num")
    png = _gates_png(firings, _tenant_colour(report))
    chart = f"<div>{_img(png, 'gate firings by wall')}</div>" if png else ""
    return f'<div class="grid wide">{chart}<div>{table}</div></div>'


def _pnl_section(report: SessionReport) -> str:
    if not report.pnl:
        return _empty("no paper P&L was recorded.")
    colours = _tenant_colour(report)
    imgs, rows = [], []
    for p in report.pnl:
        vals = [q.pnl for q in sorted(p.points, key=lambda q: q.at) if _finite(q.pnl)]
        png = _pnl_png(p, colours.get(p.tenant, _NAVY))
        imgs.append(_img(png, f"paper P&L and drawdown, {p.tenant}") if png else
                    _empty(f"no P&L points for {p.tenant}."))
        final = vals[-1] if vals else 0.0
        mdd = max_drawdown(vals)
        has_capital = _finite(p.capital) and p.capital > 0
        rows.append((_esc(p.tenant), "dry-run lock" if p.dry_run else "live",
                     _esc(_rupees(p.capital)), _esc(_rupees(final, sign=True)),
                     f"{100 * final / p.capital:+.2f} %" if has_capital else "–",
                     _esc(_rupees(mdd)),
                     f"{100 * mdd / p.capital:.2f} %" if has_capital else "–",
                     f"{len(vals):,}"))
    return (f'<div class="grid">{"".join(f"<div>{i}</div>" for i in imgs)}</div>'
            + _table(("tenant", "mode", "capital", "P&L (after costs)", "of capital",
                      "max drawdown", "of capital", "points"), rows, cls="num"))


def _latency_section(report: SessionReport) -> str:
    if not report.latencies:
        return _empty("no hop latency was measured.")
    top = max((h.p99_ms for h in report.latencies if _finite(h.p99_ms)), default=0.0) or 1.0

    def bar(h) -> str:
        w50 = 100 * h.p50_ms / top if _finite(h.p50_ms) else 0
        w99 = 100 * h.p99_ms / top if _finite(h.p99_ms) else 0
        return (f'<div class="lat"><div class="p99" style="width:{w99:.1f}%"></div>'
                f'<div class="p50" style="width:{w50:.1f}%"></div></div>')

    rows = [(_esc(h.hop), f"{h.count:,}", _pts(h.p50_ms, 1), _pts(h.p99_ms, 1), bar(h))
            for h in report.latencies]
    return (_table(("hop", "count", "p50 (ms)", "p99 (ms)", "p50 (dark) / p99 (light)"), rows,
                   cls="num latency")
            + '<p class="meta">Wall-clock milliseconds per hop over the session.</p>')


def _models_section(report: SessionReport) -> str:
    if not report.models:
        return _empty("no model was used (or none was recorded).")
    rows = [(_esc(m.model_type),
             f"v{m.version}" if m.version is not None
             else '<span class="warn">none in production</span>', _esc(m.note))
            for m in report.models]
    return _table(("model", "version", "note"), rows)


def _strategies_section(report: SessionReport) -> str:
    if not report.strategies:
        return _empty("no per-strategy statistics (qs replay reports them).")
    rows = [(_esc(s.strategy), f"{s.trades:,}", _esc(_rupees(s.pnl, sign=True)),
             _pts(s.sharpe, 3), _pts(s.psr, 3), _pts(s.dsr, 3)) for s in report.strategies]
    return (_table(("strategy", "trades", "P&L (after costs)", "Sharpe (per trade)", "PSR",
                    "DSR"), rows, cls="num")
            + '<p class="meta">PSR: probability that the true Sharpe exceeds 0. DSR: the '
              "same, deflated for the number of strategies tried.</p>")


def _notes_section(report: SessionReport) -> str:
    if not report.notes:
        return _empty("no notes.")
    return "<ul>" + "".join(f"<li>{_esc(n)}</li>" for n in report.notes) + "</ul>"


_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f4f5f7;color:#1d2433;font:14px/1.45 -apple-system,"Segoe UI",
Roboto,"Helvetica Neue",Arial,"Noto Sans",sans-serif}
header.top{background:#1f3b73;color:#fff;padding:18px 28px}
header.top h1{margin:0 0 4px;font-size:22px}
header.top .sub{opacity:.85;font-size:13px}
nav{background:#fff;border-bottom:1px solid #dde1e7;padding:6px 28px;font-size:12.5px}
nav a{color:#1f3b73;margin-right:14px;text-decoration:none}
main{max-width:1260px;margin:0 auto;padding:14px 20px 40px}
section{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:12px 18px;
margin:14px 0}
h2{font-size:17px;margin:2px 0 10px;color:#1f3b73}
img{max-width:100%;height:auto;display:block}
.tiles{display:flex;flex-wrap:wrap;gap:10px}
.tile{flex:1 1 120px;background:#f4f6fb;border:1px solid #dde1e7;border-radius:6px;
padding:8px 12px}
.tile .v{font-size:22px;font-weight:600;color:#1f3b73}
.tile .k{font-size:12px;color:#5b6475;text-transform:capitalize}
.tile.alert{background:#fdecee;border-color:#d1495b}.tile.alert .v{color:#b02a3c}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:12px}
.grid.wide{grid-template-columns:minmax(0,3fr) minmax(300px,2fr);align-items:start}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border-bottom:1px solid #e6e9ee;padding:4px 10px;text-align:left;vertical-align:top}
thead th{background:#f4f6fb;font-weight:600}
table.num td{font-variant-numeric:tabular-nums}
table.kv th{font-weight:500;color:#5b6475;background:none}
.card{border:1px solid #dde1e7;border-radius:6px;margin:10px 0;overflow:hidden}
.card-head{background:#f4f6fb;padding:7px 12px;border-bottom:1px solid #dde1e7}
.card-body{display:grid;grid-template-columns:minmax(0,1fr) 640px;gap:12px;padding:8px 12px}
.badge{font-size:11px;font-weight:700;border-radius:4px;padding:1px 6px;margin-left:6px}
.badge.paper{background:#fff3cd;border:1px solid #e0b000;color:#7a5b00}
.badge.live{background:#e3f4ea;border:1px solid #2e9e5b;color:#1d6b3d}
.ok{color:#1d7a45;font-weight:600}.bad{color:#b02a3c;font-weight:600}
.warn{color:#a15c00}
.empty{color:#5b6475;font-style:italic}
.meta{color:#5b6475;font-size:12.5px;margin:6px 0}
.reasons{margin:4px 0 0 0;padding-left:18px;font-size:13px}
details summary{cursor:pointer;color:#1f3b73;margin:6px 0}
.lat{position:relative;width:240px;height:12px;background:#f4f6fb;border-radius:3px}
.lat div{position:absolute;left:0;top:0;height:12px;border-radius:3px}
.lat .p99{background:#a9bfe6}.lat .p50{background:#1f3b73}
footer{color:#8a8f98;font-size:12px;text-align:center;margin-top:20px}
@media (max-width:1100px){.card-body,.grid.wide{grid-template-columns:1fr}}
"""

# Records, after load, how many images decoded: <body data-rendered="ok/total">. The page
# needs no script to be read; this only lets a headless browser prove the images rendered.
_SCRIPT = """<script>
window.addEventListener("load", function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (imgs[i].complete && imgs[i].naturalWidth > 0) { ok++; }
  }
  document.body.dataset.rendered = ok + "/" + imgs.length;
});
</script>"""


def render_html(report: SessionReport) -> str:
    """The report as one self-contained HTML page.

    Parameters
    ----------
    report : SessionReport
        What the session did (see :mod:`shared.report.model` for units).

    Returns
    -------
    str
        A complete HTML5 document: inline CSS, plots as base64 PNG data URIs, no external
        URL, readable without JavaScript. Every section of :data:`SECTIONS` is present;
        one without data says ``nothing to show: ...``. Takes about a second or two for a
        full session (a dozen plots at :data:`DPI`).
    """
    title = report.title or f"{report.symbol} session"
    sub = (f"{report.symbol} · session {report.session_date.isoformat()} · source "
           f"{report.source} · generated {_when(report.generated_at)}")
    sections = {
        "summary": _summary, "spot": _spot_section, "smile": _smile_section,
        "gex": _gex_section, "approved": _approved_section, "gates": _gates_section,
        "pnl": _pnl_section, "latency": _latency_section, "models": _models_section,
        "strategies": _strategies_section, "notes": _notes_section,
    }
    body = "\n".join(_section(key, sections[key](report)) for key, _ in SECTIONS)
    nav = "".join(f'<a href="#{key}">{_esc(name)}</a>' for key, name in SECTIONS)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head>\n<body>"
        f'<header class="top"><h1>{_esc(title)}</h1><div class="sub">{_esc(sub)}</div>'
        f"</header><nav>{nav}</nav>\n<main>\n{body}\n</main>"
        f"<footer>Quantsentinel session report · times in IST (UTC+05:30) · money in INR"
        f"</footer>\n{_SCRIPT}</body></html>\n")


def write_report(report: SessionReport, path: str | Path) -> Path:
    """Render the report (:func:`render_html`) and write it to ``path`` (UTF-8; parent
    directories are created). Returns the path written."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(report), encoding="utf-8")
    return out
