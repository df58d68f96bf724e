"""The daily digest of one tenant's day: what decide proposed, what risk_check approved and
blocked (and by which wall), and the paper book. Pure."""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from shared.domain.notify.cards import Card

__all__ = ["DayActivity", "render_digest"]

PAPER = "Paper trading: these are paper signals while the 14-day dry-run lock lasts."


@dataclass(frozen=True, slots=True)
class DayActivity:
    """One tenant's IST session, as the ledgers recorded it.

    Attributes
    ----------
    day
        The IST date.
    approved
        ``(symbol, structure, net EV rupees)`` of each approved signal.
    blocked_by
        The wall that blocked each blocked signal.
    open_positions
        Paper positions open at the end of the day.
    realized_pnl
        Realised paper P&L of positions closed that day, rupees.
    dry_run
        The tenant is in the dry-run lock.
    """

    day: date
    approved: tuple[tuple[str, str, float], ...] = ()
    blocked_by: tuple[str, ...] = ()
    open_positions: int = 0
    realized_pnl: float = 0.0
    dry_run: bool = True
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        return not (self.approved or self.blocked_by or self.open_positions or self.realized_pnl)


def render_digest(activity: DayActivity) -> Card:
    """The digest card (``kind`` ``daily.digest``)."""
    a = activity
    walls = Counter(a.blocked_by)
    lines = [f"Daily digest {a.day.isoformat()}"]
    if a.dry_run:
        lines.append(PAPER)
    lines.append(f"Signals: {len(a.approved)} approved, {len(a.blocked_by)} blocked.")
    for symbol, structure, ev in a.approved:
        lines.append(f"  approved: {symbol} {structure.replace('_', ' ')} "
                     f"(net EV ₹{ev:,.0f})")
    if walls:
        lines.append("Blocked by: " + ", ".join(f"{w} {n}" for w, n in walls.most_common()))
    lines.append(f"Paper book: {a.open_positions} open position(s); realised today "
                 f"₹{a.realized_pnl:,.0f}.")
    text = "\n".join(lines)
    title = ("PAPER · " if a.dry_run else "") + f"Daily digest {a.day.isoformat()}: " \
        f"{len(a.approved)} approved, {len(a.blocked_by)} blocked"
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    return Card(kind="daily.digest", title=title, text=text, html=body,
                data={"day": a.day.isoformat(), "approved": [list(x) for x in a.approved],
                      "blocked_by": dict(walls), "open_positions": a.open_positions,
                      "realized_pnl": a.realized_pnl, "dry_run": a.dry_run},
                dry_run=a.dry_run)
