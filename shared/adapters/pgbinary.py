"""PostgreSQL's binary COPY format, built with numpy (no per-row Python).

Text COPY or array literals make the server parse every number with ``strtod``: for a
1,800-leg chain that is ~25,000 floats and ~10 ms of server time. The binary format ships
the IEEE bytes as they are. Each column is a fixed-width big-endian field; NULLs (NaN
floats) are written as length -1 with no data, by dropping their bytes from the row buffer.

Format (PostgreSQL docs, "COPY ... Binary Format"): an 11-byte signature, int32 flags,
int32 header-extension length; per row an int16 field count and, per field, an int32
length followed by that many bytes; an int16 -1 trailer.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_TRAILER = b"\xff\xff"
_PG_EPOCH = np.datetime64("2000-01-01", "D")


@dataclass(frozen=True, slots=True)
class BinaryColumn:
    """One column: its bytes per row, shape (n, width), and which rows are NULL."""

    data: npt.NDArray[np.uint8]
    null: npt.NDArray[np.bool_] | None = None


def float8(values: npt.ArrayLike) -> BinaryColumn:
    """double precision; NaN and infinities become NULL."""
    a = np.asarray(values, dtype=np.float64)
    return BinaryColumn(a.astype(">f8").view(np.uint8).reshape(-1, 8), ~np.isfinite(a))


def int2(values: npt.ArrayLike) -> BinaryColumn:
    a = np.asarray(values, dtype=np.int64)
    if a.size and (a.min() < -(2**15) or a.max() >= 2**15):
        raise ValueError("int2 column out of range")
    return BinaryColumn(a.astype(">i2").view(np.uint8).reshape(-1, 2))


def date(values: npt.ArrayLike) -> BinaryColumn:
    """date, from datetime64[D]: days since 2000-01-01."""
    days = (np.asarray(values, dtype="datetime64[D]") - _PG_EPOCH).astype(np.int64)
    return BinaryColumn(days.astype(">i4").view(np.uint8).reshape(-1, 4))


def fixed_text(values: npt.ArrayLike, width: int) -> BinaryColumn:
    """char(width) / text of exactly ``width`` ASCII bytes per row."""
    a = np.asarray(values, dtype=f"S{width}")
    return BinaryColumn(a.view(np.uint8).reshape(-1, width))


def uuid_constant(value: uuid.UUID, n: int) -> BinaryColumn:
    return BinaryColumn(np.broadcast_to(np.frombuffer(value.bytes, dtype=np.uint8), (n, 16)))


def copy_binary(columns: Sequence[BinaryColumn]) -> bytes:
    """The whole COPY BINARY stream for equally long ``columns``."""
    n = columns[0].data.shape[0]
    widths = [c.data.shape[1] for c in columns]
    row = np.zeros((n, 2 + sum(4 + w for w in widths)), dtype=np.uint8)
    keep = np.ones(row.shape, dtype=np.bool_)
    row[:, :2] = np.frombuffer(np.array(len(columns), dtype=">i2").tobytes(), dtype=np.uint8)
    at = 2
    for column, width in zip(columns, widths, strict=True):
        if column.data.shape[0] != n:
            raise ValueError("COPY columns must have the same length")
        length = np.full(n, width, dtype=">i4")
        if column.null is not None:
            length[column.null] = -1
            keep[column.null, at + 4:at + 4 + width] = False
        row[:, at:at + 4] = length.view(np.uint8).reshape(n, 4)
        row[:, at + 4:at + 4 + width] = column.data
        at += 4 + width
    return _SIGNATURE + row[keep].tobytes() + _TRAILER
