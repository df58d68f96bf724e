"""Where retrain reads index history: daily bars per symbol, with a data version.

Layout under the store's root (``QS_HISTORY_URI``): ``daily/<SYMBOL>.csv`` in any format
:func:`shared.marketdata.detect_format` knows (NSE export, Yahoo/pandas, niftyindices, ...).
The root is ``gs://bucket[/prefix]`` in the cloud (the GCS emulator locally) or
``file:<directory>`` for a local directory. The data version is the object name with the
first 12 hex digits of its SHA-256: the same bytes always give the same version, so a
model's lineage names exactly what it was trained on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol

from shared.adapters.blobs import BlobStore
from shared.errors import PermanentError, TransientError
from shared.marketdata import DailyBars, detect_format, parse_daily

__all__ = ["BlobHistoryStore", "HistoryMissing", "HistoryStore", "LoadedHistory",
           "history_store"]


class HistoryMissing(PermanentError):
    reason_code = "history_missing"


@dataclass(frozen=True, slots=True)
class LoadedHistory:
    """Daily bars and the exact data they came from."""

    bars: DailyBars
    data_version: str
    data_end: date


class HistoryStore(Protocol):
    def daily(self, symbol: str) -> LoadedHistory: ...


class BlobHistoryStore:
    """:class:`HistoryStore` on GCS (``gs://``) or a directory (``file:``)."""

    def __init__(self, uri: str, blobs: BlobStore | None = None) -> None:
        if uri.startswith("gs://"):
            if blobs is None:
                raise ValueError("a gs:// history store needs a blob store")
            bucket, _, prefix = uri[5:].partition("/")
            self._bucket, self._prefix, self._dir = bucket, prefix.strip("/"), None
        elif uri.startswith("file:"):
            self._bucket, self._prefix, self._dir = "", "", Path(uri[5:])
        else:
            raise ValueError(f"history URI must be gs://bucket[/prefix] or file:<dir>, "
                             f"got {uri!r}")
        self._blobs = blobs
        self._uri = uri.rstrip("/")

    def _read(self, name: str) -> bytes:
        if self._dir is not None:
            path = self._dir / name
            if not path.is_file():
                raise HistoryMissing(f"no history file {path}")
            return path.read_bytes()
        key = f"{self._prefix}/{name}" if self._prefix else name
        assert self._blobs is not None
        try:
            return self._blobs.get(self._bucket, key)
        except TransientError:
            raise
        except Exception as exc:  # the client raises NotFound and friends
            raise HistoryMissing(f"cannot read gs://{self._bucket}/{key}: {exc}") from exc

    def daily(self, symbol: str) -> LoadedHistory:
        name = f"daily/{symbol.upper()}.csv"
        raw = self._read(name)
        text = raw.decode("utf-8-sig")
        bars = parse_daily(text, detect_format(text), symbol=symbol.upper())
        if len(bars) == 0:
            raise HistoryMissing(f"{self._uri}/{name} has no rows")
        version = f"{name}@sha256:{hashlib.sha256(raw).hexdigest()[:12]}"
        end = bars.dates[-1].astype("datetime64[D]").astype(object)
        return LoadedHistory(bars=bars, data_version=version, data_end=end)


def history_store(uri: str, blobs: BlobStore | None) -> HistoryStore:
    return BlobHistoryStore(uri, blobs)
