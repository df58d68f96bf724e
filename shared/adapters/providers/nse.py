"""NSE website option chain: ``/api/option-chain-indices`` and ``/api/option-chain-equities``.

Payload shape (see ``tests/fixtures/chains/README.md`` for the quirks)::

    {"records": {"expiryDates": [...], "data": [row, ...], "timestamp": "16-Jul-2025 15:30:00",
                 "underlyingValue": 25212.05, "strikePrices": [...], "index": {...}?},
     "filtered": {"data": [...], "CE": {...}, "PE": {...}}?}

Each ``row`` is one (strike, expiry) with an optional ``CE`` and an optional ``PE`` object.
All expiries come from ``records.data``; ``filtered`` (nearest expiry only) is ignored.

The fetcher behaves like a browser: NSE's API answers 401/403 (or an empty ``{}``)
without the cookies its home page sets, so it warms the cookie jar first, and again
whenever the API refuses or the cookies are older than ``cookie_ttl``.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from shared.adapters.providers.base import (
    BAD_EXPIRY,
    BAD_SPOT,
    BAD_STRIKE,
    BAD_TIMESTAMP,
    BROWSER_HEADERS,
    EMPTY_CHAIN,
    INCONSISTENT_UNDERLYING,
    MISSING_SYMBOL,
    SCHEMA_CHANGED,
    SPOT_TOLERANCE,
    HttpFetcher,
    HttpPolicy,
    LegColumns,
    RawPayload,
    RequestRejected,
    RetryableFetch,
    assemble,
    check_leg_spots,
    check_spot,
    coerce_float,
    decode_json,
    parse_date,
    parse_ist_timestamp,
    reject,
    sniff_body,
    to_floats,
)
from shared.domain.chain import ChainSnapshot

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests

WIRE: Final = "nse"
DEFAULT_BASE_URL: Final = "https://www.nseindia.com"
INDEX_SYMBOLS: Final = frozenset({"NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "NIFTYNXT50"})


def parse_nse(payload: bytes | str, *, symbol: str | None = None,
              source: str = "nse") -> ChainSnapshot:
    """Parse an NSE option-chain body (indices or equities) into a snapshot."""
    return parse_nse_obj(decode_json(payload, source=WIRE), symbol=symbol, source=source)


def parse_nse_obj(obj: Any, *, symbol: str | None = None, source: str = "nse") -> ChainSnapshot:
    """Parse an already-decoded NSE payload."""
    if not isinstance(obj, dict):
        raise reject(SCHEMA_CHANGED, f"top level is {type(obj).__name__}, not an object",
                     source=WIRE)
    records = obj.get("records")
    if records is None:
        raise reject(SCHEMA_CHANGED, "missing key 'records'", source=WIRE, key="records")
    if not isinstance(records, dict):
        raise reject(SCHEMA_CHANGED, "'records' is not an object", source=WIRE, key="records")
    data = records.get("data")
    if data is None:
        raise reject(SCHEMA_CHANGED, "missing key 'records.data'", source=WIRE,
                     key="records.data")
    if not isinstance(data, list):
        raise reject(SCHEMA_CHANGED, "'records.data' is not a list", source=WIRE,
                     key="records.data")
    if not data:
        raise reject(EMPTY_CHAIN, "'records.data' is empty", source=WIRE, key="records.data")

    stamp = records.get("timestamp")
    if stamp is None:
        raise reject(SCHEMA_CHANGED, "missing key 'records.timestamp'", source=WIRE,
                     key="records.timestamp")
    if not isinstance(stamp, str):
        raise reject(BAD_TIMESTAMP, f"records.timestamp is {stamp!r}", source=WIRE,
                     key="records.timestamp")
    try:
        asof = parse_ist_timestamp(stamp)
    except ValueError as exc:
        raise reject(BAD_TIMESTAMP, str(exc), source=WIRE, key="records.timestamp") from None

    legs: list[tuple[Any, ...]] = []
    calls: list[bool] = []
    row_keys: list[tuple[Any, Any]] = []
    add_leg, add_call, add_row_key = legs.append, calls.append, row_keys.append
    absent_ce = absent_pe = empty_rows = 0
    for i, row in enumerate(data):
        if type(row) is not dict:
            raise reject(SCHEMA_CHANGED, f"records.data[{i}] is not an object", source=WIRE,
                         key="records.data")
        ce = row.get("CE")
        pe = row.get("PE")
        if ce is None:
            absent_ce += 1
            if pe is None:
                empty_rows += 1
                continue
        elif pe is None:
            absent_pe += 1
        row_key = (row.get("expiryDate"), row.get("strikePrice"))
        for leg, call in ((ce, True), (pe, False)):
            if leg is None:
                continue
            if type(leg) is not dict:
                side = "CE" if call else "PE"
                raise reject(SCHEMA_CHANGED, f"records.data[{i}].{side} is not an object",
                             source=WIRE, key=side)
            try:
                add_leg(_LEG_FIELDS(leg))  # one C call per leg: the fast path
            except KeyError:
                add_leg(_leg_fields_slow(leg, row))
            add_call(call)
            add_row_key(row_key)

    if not legs:
        raise reject(EMPTY_CHAIN, "no row of 'records.data' has a CE or PE leg", source=WIRE)
    (exp, strike, last, bid, ask, vol, oi, oich, iv, unders, leg_spots) = map(list, zip(*legs,
                                                                                     strict=True))
    _check_rows_agree(exp, strike, row_keys)
    cols = LegColumns(expiry=exp, strike=strike, is_call=calls, last=last, bid=bid, ask=ask,
                      volume=vol, oi=oi, oi_change=oich, iv=iv)

    flags: list[str] = []
    uv, _ = to_floats(leg_spots)
    spot_raw = records.get("underlyingValue")
    if spot_raw is None:
        usable = uv[uv > 0]
        if usable.size == 0:
            raise reject(BAD_SPOT, "no records.underlyingValue and no leg underlyingValue",
                         source=WIRE, key="records.underlyingValue")
        spot = float(np.median(usable))
        flags.append("spot_from_legs")
    else:
        spot = check_spot(spot_raw, source=WIRE, key="records.underlyingValue")
    check_leg_spots(spot, uv, source=WIRE)
    index_quote = records.get("index")
    if isinstance(index_quote, dict):
        index_last, _ = coerce_float(index_quote.get("last"))  # may be a numeric string
        if index_last > 0 and abs(index_last - spot) > SPOT_TOLERANCE * spot:
            flags.append("index_quote_mismatch")

    sym = _symbol(unders, symbol)
    flags += absence_flags(absent_ce, absent_pe, empty_rows)
    return assemble(cols, symbol=sym, asof=asof, spot=spot, source=source, wire=WIRE,
                    flags=flags, expiry_key="expiryDate", strike_key="strikePrice")


_FIELD_NAMES: Final = ("expiryDate", "strikePrice", "lastPrice", "bidprice", "askPrice",
                       "totalTradedVolume", "openInterest", "changeinOpenInterest",
                       "impliedVolatility", "underlying", "underlyingValue")
_LEG_FIELDS: Final = itemgetter(*_FIELD_NAMES)


def _leg_fields_slow(leg: dict[str, Any], row: dict[str, Any]) -> tuple[Any, ...]:
    """A leg missing some keys: absent values are None; expiry/strike fall back to the row."""
    g = leg.get
    bid = g("bidprice")
    return (g("expiryDate", row.get("expiryDate")), g("strikePrice", row.get("strikePrice")),
            g("lastPrice"), g("bidPrice") if bid is None else bid, g("askPrice"),
            g("totalTradedVolume"), g("openInterest"), g("changeinOpenInterest"),
            g("impliedVolatility"), g("underlying"), g("underlyingValue"))


def _check_rows_agree(exp: list[Any], strike: list[Any],
                      row_keys: list[tuple[Any, Any]]) -> None:
    """A row's expiryDate/strikePrice must agree with its legs' own (they are repeated)."""
    for i in [i for i, pair in enumerate(zip(exp, strike, strict=True)) if pair != row_keys[i]]:
        for leg_value, row_value, key, reason, conv in (
                (exp[i], row_keys[i][0], "expiryDate", BAD_EXPIRY, _as_date),
                (strike[i], row_keys[i][1], "strikePrice", BAD_STRIKE, _as_number)):
            if leg_value is None or row_value is None or leg_value == row_value:
                continue
            a, b = conv(leg_value), conv(row_value)
            if a is None or b is None or a != b:
                raise reject(reason, f"a row says {key} {row_value!r} but its leg says "
                             f"{leg_value!r}", source=WIRE, key=key)


def _as_date(value: Any) -> date | None:
    try:
        return parse_date(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _as_number(value: Any) -> float | None:
    x, _ = coerce_float(value)
    return None if math.isnan(x) else x


def _symbol(unders: list[Any], requested: str | None) -> str:
    try:
        names = {u.strip().upper() for u in set(unders) if isinstance(u, str) and u.strip()}
    except TypeError:  # unhashable junk in 'underlying'
        names = {u.strip().upper() for u in unders if isinstance(u, str) and u.strip()}
    if len(names) > 1:
        raise reject(INCONSISTENT_UNDERLYING, f"legs name several underlyings: {sorted(names)}",
                     source=WIRE, key="underlying")
    want = requested.strip().upper() if requested and requested.strip() else None
    if names:
        (found,) = names
        if want is not None and want != found:
            raise reject(INCONSISTENT_UNDERLYING,
                         f"asked for {want} but the payload is for {found}", source=WIRE,
                         key="underlying")
        return found
    if want is None:
        raise reject(MISSING_SYMBOL, "no leg names its underlying and no symbol was given",
                     source=WIRE, key="underlying")
    return want


# --------------------------------------------------------------------------- fetcher


class NseProvider:
    """Fetch NSE option chains over HTTP like a browser does; parse them with :func:`parse_nse`.

    ``base_url`` is injectable (tests point it at a local server). ``sleep`` and ``clock``
    are injectable so tests need not wait out real backoffs.
    """

    name = "nse"

    def __init__(self, *, base_url: str = DEFAULT_BASE_URL, policy: HttpPolicy | None = None,
                 session: requests.Session | None = None,
                 index_symbols: frozenset[str] = INDEX_SYMBOLS,
                 warmup_paths: tuple[str, ...] = ("/",), cookie_ttl: float = 240.0,
                 sleep: Callable[[float], None] | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        import time

        self.base_url = base_url.rstrip("/")
        self.index_symbols = frozenset(s.upper() for s in index_symbols)
        self.warmup_paths = warmup_paths
        self.cookie_ttl = cookie_ttl
        self._clock = clock or time.monotonic
        self.http = HttpFetcher("nse", session=session, policy=policy,
                                headers=dict(BROWSER_HEADERS), sleep=sleep or time.sleep,
                                clock=self._clock)
        self._warmed_at: float | None = None

    def __repr__(self) -> str:
        return f"NseProvider(base_url={self.base_url!r})"

    def close(self) -> None:
        self.http.close()

    def api_url(self, symbol: str) -> str:
        kind = "indices" if symbol.upper() in self.index_symbols else "equities"
        return f"{self.base_url}/api/option-chain-{kind}"

    def fetch(self, symbol: str, now: datetime) -> RawPayload:
        """GET the chain for ``symbol``; ``now`` (aware) becomes ``fetched_at``."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        symbol = symbol.strip().upper()
        url = self.api_url(symbol)
        referer = {"Referer": f"{self.base_url}/option-chain"}

        def attempt() -> tuple[bytes, str]:
            if self._warmed_at is None or self._clock() - self._warmed_at > self.cookie_ttl:
                self._warm_up()
            resp = self.http.get(url, params={"symbol": symbol}, headers=referer)
            code = resp.status_code
            if code in (401, 403):
                self._warmed_at = None  # cookies refused: warm up again on the next try
                raise RetryableFetch(f"HTTP {code} from {url} (cookies refused)",
                                     kind="blocked", status=code)
            self.http.raise_if_retryable(resp)
            if code != 200:
                raise RequestRejected(f"NSE answered HTTP {code} for {symbol} at {url}",
                                      status=code, reason_code=f"http_{code}")
            body = resp.content
            if body.strip() in (b"", b"{}"):  # NSE's answer to a cookie-less client
                self._warmed_at = None
                raise RetryableFetch(f"empty body from {url} (session not accepted)",
                                     kind="blocked", status=code)
            sniff_body(body, source=WIRE)
            return body, resp.url

        body, final_url = self.http.run(attempt, what=f"NSE option chain {symbol}")
        return RawPayload(source=WIRE, symbol=symbol, body=body, fetched_at=now, url=final_url)

    def parse(self, raw: RawPayload) -> ChainSnapshot:
        return parse_nse(raw.body, symbol=raw.symbol, source=self.name)

    def _warm_up(self) -> None:
        """Visit the pages a browser would, so the jar holds NSE's session cookies."""
        for path in self.warmup_paths:
            resp = self.http.get(f"{self.base_url}{path}",
                                 headers={"Accept": "text/html,application/xhtml+xml,*/*"})
            if resp.status_code in (401, 403):
                raise RetryableFetch(f"HTTP {resp.status_code} on warm-up {path}",
                                     kind="blocked", status=resp.status_code)
            self.http.raise_if_retryable(resp)
        self._warmed_at = self._clock()


def absence_flags(absent_ce: int, absent_pe: int, empty_rows: int) -> list[str]:
    """The snapshot flags counting the chain's rows without a CE, without a PE (but with a
    CE), and with neither, in that order; none for a zero count."""
    counts = (("absent_ce", absent_ce), ("absent_pe", absent_pe), ("empty_rows", empty_rows))
    return [f"{name}={n}" for name, n in counts if n]
