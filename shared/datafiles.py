"""Dated data files shipped with the code (``shared/data/*.csv``): one reader for all.

Every market rule and charge is a CSV row with an effective date and a source. A file is
parsed into frozen pydantic rows (:class:`DataRow`), every row validated, and any problem
raised as the caller's error type naming the file and line, so a bad row can never be
half-read. Loaders (:mod:`shared.rules`, :mod:`shared.costs`) add their cross-row checks
and cache the result.
"""

from __future__ import annotations

import csv
import io
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

DATA_PACKAGE = "shared"
DATA_DIR = "data"

Rows = tuple[tuple[int, Any], ...]  # (line number, validated row)


class DataRow(BaseModel):
    """Base of a data file's row: frozen, no unknown columns, cells stripped."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_missing(cls, v: Any, info: ValidationInfo) -> Any:
        """An empty cell is None for optional fields (and stays '' to fail required ones)."""
        if isinstance(v, str) and not v.strip() and info.field_name is not None:
            field = cls.model_fields[info.field_name]
            if not field.is_required() and field.default is None:
                return None
        return v


def parse_csv(name: str, text: str, model: type[DataRow], error: type[Exception]) -> Rows:
    """Validate every row of CSV ``text`` (file ``name``) as ``model``.

    The header must list ``model``'s fields in order. Blank lines are skipped. Raises
    ``error`` with ``"<name> line <n>: <problem>"``.
    """
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames
    expected = list(model.model_fields)
    if header is None:
        raise error(f"{name}: empty file (expected header {','.join(expected)})")
    if [h.strip() for h in header] != expected:
        raise error(f"{name} line 1: header {','.join(header)} != expected {','.join(expected)}")
    rows: list[tuple[int, Any]] = []
    for record in reader:
        line = reader.line_num
        if None in record:
            raise error(f"{name} line {line}: more fields than the header")
        if any(v is None for v in record.values()):
            raise error(f"{name} line {line}: fewer fields than the header")
        if not any(v.strip() for v in record.values()):
            continue
        try:
            rows.append((line, model.model_validate(record)))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'row'}: {err['msg']}"
                for err in exc.errors()
            )
            raise error(f"{name} line {line}: {problems}") from exc
    return tuple(rows)


def read_packaged(name: str) -> str:
    """The text of ``shared/data/<name>`` from the installed package."""
    return (resources.files(DATA_PACKAGE) / DATA_DIR / name).read_text(encoding="utf-8")
