"""Dated trading-cost data shipped with the code, loaded once and cached.

The files live in ``shared/data`` (package data, read with :mod:`importlib.resources`) and
every row carries its source:

* ``charges.csv``         charge, instrument, side, effective_from, effective_to, rate,
  basis, source, notes: the statutory charges (STT, exchange transaction charge, SEBI
  turnover fee, NSE IPFT, stamp duty, GST). ``side`` is buy | sell | both | exercise;
  ``basis`` gives the rate's unit (see :mod:`shared.domain.costs`): ``pct_premium``,
  ``pct_turnover``, ``pct_intrinsic`` (percent), ``inr_per_crore`` (rupees per crore), or
  for GST ``pct_of:brokerage+exchange+sebi+ipft`` (percent of those charges).
* ``brokerage_plans.csv`` plan, instrument, flat_per_order, percent, cap_per_order, source,
  notes: brokerage per executed order, flat or a capped percent of turnover.

Each row is validated by a frozen pydantic model; a bad row raises :class:`CostDataError`
naming the file and line. The rows of one charge/instrument/side must follow each other
without gap or overlap, and every plan must cover options and futures.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    Field,
    StringConstraints,
    model_validator,
)

from shared.datafiles import DataRow, Rows, parse_csv, read_packaged
from shared.domain.costs import (
    BASES,
    GST_BASE_PARTS,
    GST_BASIS,
    BrokeragePlan,
    ChargeRate,
    CostSchedule,
    schedule_problems,
)

CHARGES_FILE = "charges.csv"
PLANS_FILE = "brokerage_plans.csv"

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
PlanName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]


class CostDataError(ValueError):
    """A packaged cost file is malformed (the message names the file and line)."""


# ---------------------------------------------------------------------------- row models





class ChargeRow(DataRow):
    charge: Literal["stt", "exchange", "sebi", "ipft", "stamp", "gst"]
    instrument: Literal["option", "future"]
    side: Literal["buy", "sell", "exercise", "both"]
    effective_from: date
    effective_to: date | None = None
    rate: Decimal = Field(ge=0)
    basis: Text
    source: Text
    notes: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ChargeRow:
        if self.effective_to is not None and self.effective_to < self.effective_from:
            raise ValueError("effective_to is before effective_from")
        gst = GST_BASIS.match(self.basis)
        if self.charge == "gst":
            if gst is None:
                raise ValueError(f"gst basis must be pct_of:a+b+..., got {self.basis!r}")
            parts = gst.group(1).split("+")
            unknown = sorted(set(parts) - set(GST_BASE_PARTS))
            if unknown or len(set(parts)) != len(parts):
                raise ValueError(
                    f"gst base {self.basis!r}: parts must be distinct, from "
                    f"{', '.join(GST_BASE_PARTS)}"
                )
            if self.side != "both":
                raise ValueError("gst rows apply to every fill: side must be both")
        else:
            if gst is not None or self.basis not in BASES:
                raise ValueError(f"basis must be one of {', '.join(BASES)}, got {self.basis!r}")
            instruments, sides = BASES[self.basis]
            if self.instrument not in instruments:
                raise ValueError(f"basis {self.basis} does not fit {self.instrument}s")
            if self.side not in sides:
                raise ValueError(f"basis {self.basis} does not fit side {self.side}")
        if self.basis != "inr_per_crore" and self.rate > 100:
            raise ValueError(f"rate {self.rate} is a percent and must be <= 100")
        return self

    def to_domain(self) -> ChargeRate:
        return ChargeRate(
            charge=self.charge,
            instrument=self.instrument,
            side=self.side,
            effective_from=self.effective_from,
            effective_to=self.effective_to,
            rate=self.rate,
            basis=self.basis,
            source=self.source,
        )


class PlanRow(DataRow):
    plan: PlanName
    instrument: Literal["option", "future", "both"]
    flat_per_order: Decimal | None = Field(default=None, ge=0)
    percent: Decimal | None = Field(default=None, ge=0, le=100)
    cap_per_order: Decimal | None = Field(default=None, ge=0)
    source: Text
    notes: str | None = None

    @model_validator(mode="after")
    def _kind(self) -> PlanRow:
        if (self.flat_per_order is None) == (self.percent is None):
            raise ValueError("give either flat_per_order or percent (with optional cap)")
        if self.cap_per_order is not None and self.percent is None:
            raise ValueError("cap_per_order only goes with percent")
        return self

    def to_domain(self) -> BrokeragePlan:
        return BrokeragePlan(
            plan=self.plan,
            instrument=self.instrument,
            flat_per_order=self.flat_per_order,
            percent=self.percent,
            cap_per_order=self.cap_per_order,
            source=self.source,
        )


# ---------------------------------------------------------------------------- parsing



def _check_charges(name: str, rows: Rows) -> None:
    if not rows:
        raise CostDataError(f"{name}: no rows")
    rates = [r.to_domain() for _, r in rows]
    problems = schedule_problems(rates)
    if problems:
        i, msg = min(problems, key=lambda p: rows[p[0]][0])
        raise CostDataError(f"{name} line {rows[i][0]}: {msg}")
    for instrument in ("option", "future"):
        if not any(r.instrument == instrument for r in rates):
            raise CostDataError(f"{name}: no rows for {instrument}s")


def _check_plans(name: str, rows: Rows) -> None:
    if not rows:
        raise CostDataError(f"{name}: no rows")
    seen: dict[tuple[str, str], int] = {}
    for line, r in rows:
        covered = ("option", "future") if r.instrument == "both" else (r.instrument,)
        for inst in covered:
            if (r.plan, inst) in seen:
                raise CostDataError(
                    f"{name} line {line}: plan {r.plan} already covers {inst}s "
                    f"(line {seen[(r.plan, inst)]})"
                )
            seen[(r.plan, inst)] = line
    for line, r in rows:
        for inst in ("option", "future"):
            if (r.plan, inst) not in seen:
                raise CostDataError(f"{name} line {line}: plan {r.plan} has no {inst} row")


_TABLES: dict[str, tuple[type[DataRow], Callable[[str, Rows], None]]] = {
    CHARGES_FILE: (ChargeRow, _check_charges),
    PLANS_FILE: (PlanRow, _check_plans),
}


def parse_table(name: str, text: str) -> Rows:
    """Parse and validate the CSV text of the packaged file ``name``.

    Returns ``(line, row)`` pairs; raises :class:`CostDataError` naming file and line.
    """
    if name not in _TABLES:
        raise CostDataError(f"{name}: not a cost table (known: {', '.join(_TABLES)})")
    model, check = _TABLES[name]
    result = parse_csv(name, text, model, CostDataError)
    check(name, result)
    return result


def schedule_from_text(charges: str, plans: str) -> CostSchedule:
    """A :class:`CostSchedule` from the CSV texts of the two tables (validated)."""
    return CostSchedule(
        rates=tuple(r.to_domain() for _, r in parse_table(CHARGES_FILE, charges)),
        plans=tuple(r.to_domain() for _, r in parse_table(PLANS_FILE, plans)),
    )


def _read(name: str) -> str:
    return read_packaged(name)


@functools.cache
def load_table(name: str) -> Rows:
    """The validated rows of a packaged cost file (cached)."""
    return parse_table(name, _read(name))


@functools.cache
def default_cost_schedule() -> CostSchedule:
    """The cached :class:`CostSchedule` built from the packaged data."""
    return CostSchedule(
        rates=tuple(r.to_domain() for _, r in load_table(CHARGES_FILE)),
        plans=tuple(r.to_domain() for _, r in load_table(PLANS_FILE)),
    )
