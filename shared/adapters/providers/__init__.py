"""Option-chain providers: fetch raw payloads (NSE website, Upstox API, recorded files) and
parse them into typed :class:`~shared.domain.chain.ChainSnapshot` objects.

* :func:`parse_payload` parses bytes of either format (auto-detected by default).
* :func:`detect_source` says which format a payload is.
* :class:`NseProvider`, :class:`UpstoxProvider`, :class:`ReplayProvider` implement
  :class:`ChainProvider` (``fetch`` does I/O, ``parse`` is pure).

Errors: :class:`PayloadRejected` (permanent; ``reason_code`` says why), :class:`TokenExpired`
(permanent), :class:`RequestRejected` (permanent, 4xx), :class:`ProviderUnavailable`
(transient, retries spent), :class:`ReplayExhausted` (permanent).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from shared.adapters.providers.base import (
    API_ERROR,
    BAD_EXPIRY,
    BAD_SPOT,
    BAD_STRIKE,
    BAD_TIMESTAMP,
    EMPTY_CHAIN,
    HTML_NOT_JSON,
    INCONSISTENT_UNDERLYING,
    MISSING_SYMBOL,
    NOT_JSON,
    SCHEMA_CHANGED,
    UNKNOWN_FORMAT,
    ChainProvider,
    HttpPolicy,
    PayloadRejected,
    ProviderUnavailable,
    RawPayload,
    ReplayExhausted,
    RequestRejected,
    TokenExpired,
    decode_json,
    reject,
)
from shared.adapters.providers.nse import NseProvider, parse_nse, parse_nse_obj
from shared.adapters.providers.replay import ReplayProvider
from shared.adapters.providers.upstox import UpstoxProvider, parse_upstox, parse_upstox_obj
from shared.domain.chain import ChainSnapshot

__all__ = [
    "API_ERROR", "BAD_EXPIRY", "BAD_SPOT", "BAD_STRIKE", "BAD_TIMESTAMP", "EMPTY_CHAIN",
    "HTML_NOT_JSON", "INCONSISTENT_UNDERLYING", "MISSING_SYMBOL", "NOT_JSON", "SCHEMA_CHANGED",
    "UNKNOWN_FORMAT",
    "ChainProvider", "HttpPolicy", "NseProvider", "PayloadRejected", "ProviderUnavailable",
    "RawPayload", "ReplayExhausted", "ReplayProvider", "RequestRejected", "TokenExpired",
    "UpstoxProvider", "detect_source", "parse_nse", "parse_nse_obj", "parse_payload",
    "parse_upstox", "parse_upstox_obj",
]

Source = Literal["nse", "upstox"]
_UPSTOX_ROW_KEYS = ("call_options", "put_options", "underlying_key", "strike_price")


def _detect(obj: Any) -> Source:
    if isinstance(obj, dict):
        if "records" in obj or "filtered" in obj:
            return "nse"
        data = obj.get("data")
        if isinstance(data, list):
            first = next((x for x in data if isinstance(x, dict)), None)
            if first is not None and any(k in first for k in _UPSTOX_ROW_KEYS):
                return "upstox"
            if first is None and "status" in obj:
                return "upstox"  # an empty Upstox answer
        if "status" in obj and ("errors" in obj or "data" in obj):
            return "upstox"
    shape = f"keys {sorted(obj)[:8]}" if isinstance(obj, dict) else type(obj).__name__
    raise reject(UNKNOWN_FORMAT, f"neither an NSE nor an Upstox option chain ({shape})")


def detect_source(payload: bytes) -> Source:
    """``"nse"`` or ``"upstox"`` from the payload's structure; PayloadRejected otherwise."""
    return _detect(decode_json(payload))


def parse_payload(payload: bytes, *, source: str = "auto", symbol: str | None = None,
                  asof: datetime | None = None,
                  snapshot_source: str | None = None) -> ChainSnapshot:
    """Parse an NSE or Upstox option-chain body into a :class:`ChainSnapshot`.

    ``source`` is ``"auto"`` (detect), ``"nse"`` or ``"upstox"``. Upstox payloads carry no
    timestamp, so they need ``asof`` (the aware fetch time). ``snapshot_source`` overrides
    the snapshot's ``source`` label (default: the wire format).
    """
    if source not in ("auto", "nse", "upstox"):
        raise ValueError(f"source must be 'auto', 'nse' or 'upstox', not {source!r}")
    obj = decode_json(payload, source=None if source == "auto" else source)
    wire = _detect(obj) if source == "auto" else source
    label = snapshot_source or wire
    if wire == "nse":
        return parse_nse_obj(obj, symbol=symbol, source=label)
    if asof is None:
        raise ValueError("Upstox payloads carry no timestamp: pass asof= (the fetch time)")
    return parse_upstox_obj(obj, asof=asof, symbol=symbol, source=label)
