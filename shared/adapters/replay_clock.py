"""A session clock shared by processes, for local replays (``make run``).

The replay driver steps market time minute by minute, faster than the wall clock, while
the functions run in their own processes. It writes an anchor to a small JSON file
(``QS_CLOCK_FILE``): market time ``session`` at wall time ``wall``, running at ``rate``
market seconds per wall second. Every process reads the anchor and computes

    now = session + (time.time() - wall) * rate

so between two steps time runs on (at ``rate``), and an event's age is measured as in
production. The file is replaced atomically (write, then ``os.replace``); readers re-read
it only when its modification time changes. Refused when deployed (``shared.config``).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = ["ClockAnchor", "FileClock", "write_anchor"]


@dataclass(frozen=True, slots=True)
class ClockAnchor:
    """Market time ``session`` at wall time ``wall`` (Unix seconds), advancing at ``rate``."""

    session: datetime
    wall: float
    rate: float = 1.0

    def at(self, wall_now: float) -> datetime:
        return self.session + timedelta(seconds=(wall_now - self.wall) * self.rate)


def write_anchor(path: Path, session: datetime, *, rate: float = 1.0,
                 wall: float | None = None) -> ClockAnchor:
    """Set the shared clock to ``session`` now (atomically); returns the anchor written."""
    if session.tzinfo is None:
        raise ValueError("the session clock must be timezone-aware")
    if not rate > 0:
        raise ValueError(f"the clock rate must be positive, got {rate}")
    anchor = ClockAnchor(session.astimezone(UTC), time.time() if wall is None else wall, rate)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"session": anchor.session.isoformat(), "wall": anchor.wall,
                               "rate": anchor.rate}))
    os.replace(tmp, path)
    return anchor


class FileClock:
    """``now()`` from the anchor in ``path`` (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: int | None = None
        self._anchor: ClockAnchor | None = None

    def anchor(self) -> ClockAnchor:
        try:
            stamp = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            raise RuntimeError(f"QS_CLOCK_FILE {self.path} does not exist: is the replay "
                               "driver running?") from None
        with self._lock:
            if stamp != self._stamp or self._anchor is None:
                raw = json.loads(self.path.read_text())
                self._anchor = ClockAnchor(datetime.fromisoformat(raw["session"]),
                                           float(raw["wall"]), float(raw.get("rate", 1.0)))
                self._stamp = stamp
            return self._anchor

    def now(self) -> datetime:
        return self.anchor().at(time.time())
