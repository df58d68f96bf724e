"""Play recorded provider payloads back, one file per ``fetch``, in file-name order.

Each file's wire format (NSE or Upstox) is detected from its content, so one directory
may mix both (and several underlyings). Upstox payloads carry no timestamp: their ``asof``
is the ``now`` given to ``fetch``, as for a live fetch. By default the snapshot's symbol is
the one the payload names (the symbol given to ``fetch`` only fills in when it names none);
with ``check_symbol=True`` a payload for another underlying is rejected, as a live
provider's would be.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

from shared.adapters.providers.base import RawPayload, ReplayExhausted
from shared.domain.chain import ChainSnapshot


class ReplayProvider:
    """A :class:`~shared.adapters.providers.base.ChainProvider` over recorded files."""

    name = "replay"

    def __init__(self, directory: str | Path, *, pattern: str = "*.json",
                 check_symbol: bool = False) -> None:
        self.directory = Path(directory)
        self.check_symbol = check_symbol
        if not self.directory.is_dir():
            raise FileNotFoundError(f"replay directory {self.directory} does not exist")
        self.files = tuple(sorted((p for p in self.directory.glob(pattern) if p.is_file()),
                                  key=lambda p: p.name))
        if not self.files:
            raise FileNotFoundError(f"no {pattern} files to replay in {self.directory}")
        self._pos = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.files)

    @property
    def remaining(self) -> int:
        return len(self.files) - self._pos

    def reset(self) -> None:
        with self._lock:
            self._pos = 0

    def fetch(self, symbol: str, now: datetime) -> RawPayload:
        """The next recorded payload; raises :class:`ReplayExhausted` after the last one."""
        from shared.adapters.providers import detect_source

        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        with self._lock:
            if self._pos >= len(self.files):
                raise ReplayExhausted(f"replay of {self.directory} exhausted: all "
                                      f"{len(self.files)} payload(s) were played")
            path = self.files[self._pos]
            self._pos += 1
        body = path.read_bytes()
        return RawPayload(source=detect_source(body), symbol=symbol.strip().upper(), body=body,
                          fetched_at=now, url=path.resolve().as_uri())

    def parse(self, raw: RawPayload) -> ChainSnapshot:
        from shared.adapters.providers import MISSING_SYMBOL, PayloadRejected, parse_payload

        def parse(symbol: str | None) -> ChainSnapshot:
            return parse_payload(raw.body, source=raw.source, symbol=symbol,
                                 asof=raw.fetched_at, snapshot_source=f"replay:{raw.source}")

        if self.check_symbol:
            snap = parse(raw.symbol)
        else:
            try:
                snap = parse(None)
            except PayloadRejected as exc:
                if exc.reason_code != MISSING_SYMBOL:
                    raise
                snap = parse(raw.symbol)
        if raw.url:
            name = raw.url.rsplit("/", 1)[-1]
            return _with_flag(snap, f"replay_file={name}")
        return snap


def _with_flag(snap: ChainSnapshot, flag: str) -> ChainSnapshot:
    from dataclasses import replace

    return replace(snap, flags=(*snap.flags, flag))
