"""Binary COPY built with numpy, read back from a real PostgreSQL."""

import uuid
from datetime import date

import numpy as np
import pytest

from shared.adapters import pgbinary

pytestmark = pytest.mark.integration


def test_binary_copy_round_trips_every_type_and_nulls(owner_db):
    sid = uuid.uuid4()
    f = np.array([1.5, np.nan, -0.0, 1e-300, np.inf, 25212.05])
    n = f.size
    with owner_db.system() as s:
        s.execute("CREATE TEMP TABLE t (id uuid, d date, x double precision, c char(2), i smallint) "
                  "ON COMMIT DROP")
        s.copy_binary("t", ("id", "d", "x", "c", "i"), pgbinary.copy_binary([
            pgbinary.uuid_constant(sid, n),
            pgbinary.date(np.array(["2025-07-17", "1999-12-31", "2000-01-01", "2026-03-02",
                                    "2030-12-31", "2025-07-17"], dtype="datetime64[D]")),
            pgbinary.float8(f),
            pgbinary.fixed_text(np.array(["CE", "PE", "CE", "PE", "CE", "PE"]), 2),
            pgbinary.int2(np.array([0, 1, -2, 32767, -32768, 7])),
        ]))
        rows = s.execute("SELECT id, d, x, c, i FROM t").rows
    assert [r[0] for r in rows] == [sid] * n
    assert [r[1] for r in rows] == [date(2025, 7, 17), date(1999, 12, 31), date(2000, 1, 1),
                                    date(2026, 3, 2), date(2030, 12, 31), date(2025, 7, 17)]
    assert [r[2] for r in rows] == [1.5, None, -0.0, 1e-300, None, 25212.05]  # NaN/inf → NULL
    assert [r[3] for r in rows] == ["CE", "PE", "CE", "PE", "CE", "PE"]
    assert [r[4] for r in rows] == [0, 1, -2, 32767, -32768, 7]


def test_out_of_range_smallints_are_refused():
    with pytest.raises(ValueError):
        pgbinary.int2(np.array([40000]))
