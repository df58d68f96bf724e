"""Upstox v2 option chain: ``GET /v2/option/chain?instrument_key=...&expiry_date=YYYY-MM-DD``.

Payload shape::

    {"status": "success", "data": [
        {"expiry": "2024-06-20", "pcr": 874.77, "strike_price": 20150,
         "underlying_key": "NSE_INDEX|Nifty 50", "underlying_spot_price": 23593.5,
         "call_options": {"instrument_key": ..., "market_data": {"ltp", "volume", "oi",
                          "close_price", "bid_price", "bid_qty", "ask_price", "ask_qty",
                          "prev_oi"},
                          "option_greeks": {"vega", "theta", "gamma", "delta", "iv", "pop"?}},
         "put_options": {...}}, ...]}

One element per strike of a single expiry. ``iv`` is in percent; the payload has no
timestamp, so the snapshot's ``asof`` is the fetch time, passed in by the caller.
``oi_change`` is derived as ``oi - prev_oi``. Greeks other than ``iv`` (and ``pop``) are
rounded vendor values and are not carried: the analytics compute their own.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from shared.adapters.providers.base import (
    API_ERROR,
    BAD_SPOT,
    BAD_TIMESTAMP,
    EMPTY_CHAIN,
    INCONSISTENT_UNDERLYING,
    IST,
    MISSING_SYMBOL,
    SCHEMA_CHANGED,
    SPOT_TOLERANCE,
    HttpFetcher,
    HttpPolicy,
    LegColumns,
    RawPayload,
    RequestRejected,
    TokenExpired,
    assemble,
    decode_json,
    parse_date,
    reject,
    sniff_body,
    to_floats,
)
from shared.domain.chain import ChainSnapshot

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests

WIRE: Final = "upstox"
DEFAULT_BASE_URL: Final = "https://api.upstox.com"

# Our symbol -> Upstox underlying instrument key (extend through the constructor).
INSTRUMENT_KEYS: Final = {
    "NIFTY": "NSE_INDEX|Nifty 50",
    "BANKNIFTY": "NSE_INDEX|Nifty Bank",
    "FINNIFTY": "NSE_INDEX|Nifty Fin Service",
    "MIDCPNIFTY": "NSE_INDEX|NIFTY MID SELECT",
    "NIFTYNXT50": "NSE_INDEX|Nifty Next 50",
    "SENSEX": "BSE_INDEX|SENSEX",
    "BANKEX": "BSE_INDEX|BANKEX",
}
_SYMBOL_BY_KEY: Final = {v.upper(): k for k, v in INSTRUMENT_KEYS.items()}
_NO_LEG: Final[dict[str, Any]] = {}


def symbol_for_key(underlying_key: str) -> str | None:
    """``"NSE_INDEX|Nifty 50"`` -> ``"NIFTY"``; None for keys we do not know."""
    return _SYMBOL_BY_KEY.get(underlying_key.strip().upper())


def parse_upstox(payload: bytes | str, *, asof: datetime, symbol: str | None = None,
                 source: str = "upstox") -> ChainSnapshot:
    """Parse an Upstox option-chain body; ``asof`` (aware) is when it was fetched."""
    return parse_upstox_obj(decode_json(payload, source=WIRE), asof=asof, symbol=symbol,
                            source=source)


def parse_upstox_obj(obj: Any, *, asof: datetime, symbol: str | None = None,
                     source: str = "upstox") -> ChainSnapshot:
    """Parse an already-decoded Upstox payload."""
    if not isinstance(asof, datetime) or asof.tzinfo is None or asof.utcoffset() is None:
        raise reject(BAD_TIMESTAMP, f"asof must be a timezone-aware datetime, got {asof!r}",
                     source=WIRE)
    asof = asof.astimezone(IST)
    if not isinstance(obj, dict):
        raise reject(SCHEMA_CHANGED, f"top level is {type(obj).__name__}, not an object",
                     source=WIRE)
    status = obj.get("status")
    if status is not None and status != "success":
        raise reject(API_ERROR, f"status {status!r}: {_error_text(obj)}", source=WIRE,
                     key="status")
    data = obj.get("data")
    if data is None:
        raise reject(SCHEMA_CHANGED, "missing key 'data'", source=WIRE, key="data")
    if not isinstance(data, list):
        raise reject(SCHEMA_CHANGED, "'data' is not a list", source=WIRE, key="data")
    if not data:
        raise reject(EMPTY_CHAIN, "'data' is empty", source=WIRE, key="data")

    cols = LegColumns.empty()
    spots: list[Any] = []
    keys: list[Any] = []
    prev_oi: list[Any] = []
    absent_call = absent_put = empty_rows = 0
    for i, row in enumerate(data):
        if type(row) is not dict:
            raise reject(SCHEMA_CHANGED, f"data[{i}] is not an object", source=WIRE, key="data")
        spots.append(row.get("underlying_spot_price"))
        keys.append(row.get("underlying_key"))
        call = row.get("call_options")
        put = row.get("put_options")
        if call is None:
            absent_call += 1
            if put is None:
                empty_rows += 1
                continue
        elif put is None:
            absent_put += 1
        exp = row.get("expiry")
        strike = row.get("strike_price")
        for leg, is_call in ((call, True), (put, False)):
            if leg is None:
                continue
            if type(leg) is not dict:
                side = "call_options" if is_call else "put_options"
                raise reject(SCHEMA_CHANGED, f"data[{i}].{side} is not an object",
                             source=WIRE, key=side)
            md = leg.get("market_data") or _NO_LEG
            greeks = leg.get("option_greeks") or _NO_LEG
            if type(md) is not dict or type(greeks) is not dict:
                raise reject(SCHEMA_CHANGED, f"data[{i}] market_data/option_greeks is not an "
                             "object", source=WIRE, key="market_data")
            cols.expiry.append(exp)
            cols.strike.append(strike)
            cols.is_call.append(is_call)
            cols.last.append(md.get("ltp"))
            cols.bid.append(md.get("bid_price"))
            cols.ask.append(md.get("ask_price"))
            cols.volume.append(md.get("volume"))
            cols.oi.append(md.get("oi"))
            prev_oi.append(md.get("prev_oi"))
            cols.iv.append(greeks.get("iv"))

    if not len(cols):
        raise reject(EMPTY_CHAIN, "no element of 'data' has call_options or put_options",
                     source=WIRE)

    # Upstox reports open interest and volume in units of the underlying (multiples of the
    # lot), NSE in contracts: the flag tells the analytics to divide by the dated lot size.
    flags: list[str] = [OI_IN_UNITS]
    spot_arr, _ = to_floats(spots)
    usable = spot_arr[spot_arr > 0]
    if usable.size == 0:
        raise reject(BAD_SPOT, "no positive underlying_spot_price", source=WIRE,
                     key="underlying_spot_price")
    spot = float(usable[0])
    worst = float(np.max(np.abs(usable - spot)))
    if worst > SPOT_TOLERANCE * spot:
        raise reject(INCONSISTENT_UNDERLYING,
                     f"underlying_spot_price varies by {worst:.4g} around {spot:.6g}",
                     source=WIRE, key="underlying_spot_price")
    sym = _symbol(keys, symbol)

    # oi_change = oi - prev_oi where both are usable numbers (prev_oi 0 = new strike).
    oi, _ = to_floats(cols.oi)
    prev, _ = to_floats(prev_oi)
    oi_change = np.where((oi >= 0) & (prev >= 0), oi - prev, np.nan)
    if absent_call:
        flags.append(f"absent_ce={absent_call}")
    if absent_put:
        flags.append(f"absent_pe={absent_put}")
    if empty_rows:
        flags.append(f"empty_rows={empty_rows}")
    return assemble(cols, symbol=sym, asof=asof, spot=spot, source=source, wire=WIRE,
                    flags=flags, oi_change=oi_change, expiry_key="expiry",
                    strike_key="strike_price")


def _symbol(keys: list[Any], requested: str | None) -> str:
    distinct = {k.strip() for k in keys if isinstance(k, str) and k.strip()}
    if len({k.upper() for k in distinct}) > 1:
        raise reject(INCONSISTENT_UNDERLYING, f"elements name several underlyings: "
                     f"{sorted(distinct)}", source=WIRE, key="underlying_key")
    want = requested.strip().upper() if requested and requested.strip() else None
    if want is not None and "|" in want:  # the caller used an instrument key
        want = symbol_for_key(want) or want.split("|", 1)[1].replace(" ", "")
    key = next(iter(distinct), None)
    found = symbol_for_key(key) if key else None
    if found is not None and want is not None and found != want:
        raise reject(INCONSISTENT_UNDERLYING, f"asked for {want} but the payload is for {key}",
                     source=WIRE, key="underlying_key")
    if want is not None:
        return want
    if found is not None:
        return found
    if key is not None:  # an underlying we have no name for (equity ISIN, new index)
        return key.split("|", 1)[-1].strip().upper()
    raise reject(MISSING_SYMBOL, "no underlying_key and no symbol was given", source=WIRE,
                 key="underlying_key")


def _error_text(obj: dict[str, Any]) -> str:
    errors = obj.get("errors")
    if isinstance(errors, list):
        parts = []
        for e in errors[:5]:
            if isinstance(e, dict):
                code = e.get("errorCode") or e.get("error_code") or "?"
                parts.append(f"{code} {e.get('message', '')}".strip())
            else:
                parts.append(str(e)[:200])
        if parts:
            return "; ".join(parts)
    return "no error detail"


# --------------------------------------------------------------------------- fetcher


OI_IN_UNITS = "oi_in_units"


class UpstoxProvider:
    """Fetch Upstox option chains with a bearer token; parse them with :func:`parse_upstox`.

    ``fetch(symbol, now, expiry=...)``: ``symbol`` is ours (``"NIFTY"``, mapped through
    ``instrument_keys``) or an Upstox instrument key. Without ``expiry`` the nearest
    expiry on or after today (IST) is chosen, from ``expiry_resolver`` when given, else
    from ``/v2/option/contract``. A 401 raises :class:`TokenExpired` (permanent: a human
    must log in again; Upstox tokens expire daily at 03:30 IST).
    """

    name = "upstox"

    def __init__(self, access_token: str, *, base_url: str = DEFAULT_BASE_URL,
                 policy: HttpPolicy | None = None, session: requests.Session | None = None,
                 instrument_keys: dict[str, str] | None = None,
                 expiry_resolver: Callable[[str, datetime], date] | None = None,
                 sleep: Callable[[float], None] | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        import time

        if not access_token or not access_token.strip():
            raise ValueError("UpstoxProvider needs an access token")
        self.base_url = base_url.rstrip("/")
        self.instrument_keys = {**INSTRUMENT_KEYS,
                                **{k.upper(): v for k, v in (instrument_keys or {}).items()}}
        self.expiry_resolver = expiry_resolver
        self.http = HttpFetcher("upstox", session=session, policy=policy,
                                headers={"Accept": "application/json",
                                         "Authorization": f"Bearer {access_token.strip()}"},
                                sleep=sleep or time.sleep, clock=clock or time.monotonic)

    def __repr__(self) -> str:  # never show the token
        return f"UpstoxProvider(base_url={self.base_url!r})"

    def close(self) -> None:
        self.http.close()

    def instrument_key(self, symbol: str) -> str:
        s = symbol.strip()
        if "|" in s:
            return s
        try:
            return self.instrument_keys[s.upper()]
        except KeyError:
            raise ValueError(f"no Upstox instrument key known for {symbol!r}") from None

    def fetch(self, symbol: str, now: datetime, *, expiry: date | None = None) -> RawPayload:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        key = self.instrument_key(symbol)
        if expiry is None:
            expiry = (self.expiry_resolver(symbol, now) if self.expiry_resolver
                      else self.nearest_expiry(symbol, now))
        url = f"{self.base_url}/v2/option/chain"
        params = {"instrument_key": key, "expiry_date": expiry.isoformat()}
        body, final_url = self._get(url, params, what=f"Upstox option chain {key} {expiry}")
        return RawPayload(source=WIRE, symbol=symbol.strip().upper(), body=body, fetched_at=now,
                          url=final_url)

    def parse(self, raw: RawPayload) -> ChainSnapshot:
        return parse_upstox(raw.body, asof=raw.fetched_at, symbol=raw.symbol, source=self.name)

    def expiries(self, symbol: str) -> list[date]:
        """The expiries Upstox lists for ``symbol`` (``/v2/option/contract``), sorted."""
        key = self.instrument_key(symbol)
        body, _ = self._get(f"{self.base_url}/v2/option/contract", {"instrument_key": key},
                            what=f"Upstox option contracts {key}")
        obj = decode_json(body, source=WIRE)
        if not isinstance(obj, dict):
            raise reject(SCHEMA_CHANGED, "option/contract: top level is not an object",
                         source=WIRE)
        if obj.get("status") not in (None, "success"):
            raise reject(API_ERROR, f"option/contract: {_error_text(obj)}", source=WIRE)
        data = obj.get("data")
        if not isinstance(data, list):
            raise reject(SCHEMA_CHANGED, "option/contract: missing key 'data'", source=WIRE,
                         key="data")
        found: set[date] = set()
        for item in data:
            exp = item.get("expiry") if isinstance(item, dict) else None
            if isinstance(exp, str):
                try:
                    found.add(parse_date(exp))
                except ValueError:
                    continue
        return sorted(found)

    def nearest_expiry(self, symbol: str, now: datetime) -> date:
        today = now.astimezone(IST).date()
        upcoming = [d for d in self.expiries(symbol) if d >= today]
        if not upcoming:
            raise reject(EMPTY_CHAIN, f"Upstox lists no expiry on or after {today} for {symbol}",
                         source=WIRE)
        return upcoming[0]

    def _get(self, url: str, params: dict[str, str], *, what: str) -> tuple[bytes, str]:
        def attempt() -> tuple[bytes, str]:
            resp = self.http.get(url, params=params)
            code = resp.status_code
            if code == 401:
                raise TokenExpired(f"{what}: HTTP 401, the access token was refused (expired "
                                   f"daily at 03:30 IST?): {_body_error(resp)}")
            self.http.raise_if_retryable(resp)
            if code != 200:
                raise RequestRejected(f"{what}: HTTP {code}: {_body_error(resp)}", status=code,
                                      reason_code=f"http_{code}")
            sniff_body(resp.content, source=WIRE)
            return resp.content, resp.url

        return self.http.run(attempt, what=what)


def _body_error(resp: requests.Response) -> str:
    try:
        obj = resp.json()
    except ValueError:
        return resp.text[:200]
    return _error_text(obj) if isinstance(obj, dict) else str(obj)[:200]
