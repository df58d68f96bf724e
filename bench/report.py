"""One table format for every benchmark's rows (``median_s``, ``min_s``, ``max_s``,
optionally ``p99_s``, plus any extra keys, printed as notes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_TIMES = ("median_s", "p99_s", "min_s", "max_s")


def table(results: Mapping[str, Mapping[str, Any]], runs: int) -> str:
    with_p99 = any("p99_s" in r for r in results.values())
    columns = [c for c in _TIMES if with_p99 or c != "p99_s"]
    lines = [f"{'benchmark':<44}" + "".join(f"{c[:-2]:>12}" for c in columns) + f"   (n={runs})"]
    for name, r in results.items():
        cells = "".join(f"{r[c] * 1e3:10.3f}ms" if c in r else f"{'-':>12}" for c in columns)
        extra = {k: v for k, v in r.items() if k not in _TIMES}
        note = "  " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in extra.items()) if extra else ""
        lines.append(f"{name:<44}{cells}{note}")
    return "\n".join(lines)
