"""What every option-chain provider shares: the raw payload, the protocol, the errors,
the number coercion and snapshot assembly used by the parsers, and the HTTP fetch loop
(rate limit, timeouts, retries with exponential backoff and jitter).

Parsers turn vendor quirks into typed values: vendor zeros and junk become ``NaN`` plus a
per-leg :class:`~shared.domain.chain.Missing` flag, never a fake number. A body that cannot
give a snapshot at all raises :class:`PayloadRejected` (permanent: retrying the same bytes
cannot help); a provider that is down, slow or rate-limiting raises
:class:`ProviderUnavailable` (transient) once the retries are spent.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, runtime_checkable
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import orjson

from shared.domain.chain import ChainSnapshot, Missing
from shared.errors import PermanentError, TransientError

if TYPE_CHECKING:
    import requests

IST: Final = ZoneInfo("Asia/Kolkata")

# Stable reason codes of PayloadRejected (metrics and audits key on them).
NOT_JSON: Final = "not_json"
HTML_NOT_JSON: Final = "html_not_json"
SCHEMA_CHANGED: Final = "schema_changed"
EMPTY_CHAIN: Final = "empty_chain"
BAD_TIMESTAMP: Final = "bad_timestamp"
BAD_SPOT: Final = "bad_spot"
BAD_EXPIRY: Final = "bad_expiry"
BAD_STRIKE: Final = "bad_strike"
INCONSISTENT_UNDERLYING: Final = "inconsistent_underlying"
MISSING_SYMBOL: Final = "missing_symbol"
API_ERROR: Final = "api_error"
UNKNOWN_FORMAT: Final = "unknown_format"

# Leg underlying values may differ from the snapshot spot by at most this fraction.
SPOT_TOLERANCE: Final = 0.005


# --------------------------------------------------------------------------- payloads


@dataclass(frozen=True, slots=True)
class RawPayload:
    """The bytes a provider returned, before parsing (what gets archived and replayed)."""

    source: str  # "nse" or "upstox": the wire format of ``body``
    symbol: str
    body: bytes
    fetched_at: datetime  # timezone-aware
    url: str | None = None

    def __post_init__(self) -> None:
        if self.fetched_at.tzinfo is None or self.fetched_at.utcoffset() is None:
            raise ValueError("RawPayload.fetched_at must be timezone-aware")
        if not isinstance(self.body, bytes):
            raise TypeError("RawPayload.body must be bytes")


@runtime_checkable
class ChainProvider(Protocol):
    """A source of option-chain snapshots: ``fetch`` does I/O, ``parse`` is pure."""

    name: str

    def fetch(self, symbol: str, now: datetime) -> RawPayload: ...

    def parse(self, raw: RawPayload) -> ChainSnapshot: ...


# --------------------------------------------------------------------------- errors


class PayloadRejected(PermanentError):
    """The body can never give a snapshot (not JSON, schema changed, empty, inconsistent)."""

    reason_code = "payload_rejected"

    def __init__(self, message: str, *, reason_code: str, source: str | None = None,
                 key: str | None = None) -> None:
        super().__init__(message, reason_code=reason_code)
        self.source = source
        self.key = key  # the missing or offending key, where there is one


class RequestRejected(PermanentError):
    """The provider refused the request itself (4xx other than rate limit and expiry)."""

    reason_code = "request_rejected"

    def __init__(self, message: str, *, status: int | None = None,
                 reason_code: str | None = None) -> None:
        super().__init__(message, reason_code=reason_code)
        self.status = status


class TokenExpired(PermanentError):
    """The access token was refused (Upstox tokens expire daily at 03:30 IST)."""

    reason_code = "token_expired"
    http_status = 401


class ProviderUnavailable(TransientError):
    """The provider kept failing (5xx, 429, timeouts, connection errors) past all retries.

    ``reason_code`` says what the last failure was: ``provider_timeout``,
    ``provider_rate_limited``, ``provider_blocked`` or ``provider_unavailable``.
    """

    reason_code = "provider_unavailable"

    def __init__(self, message: str, *, reason_code: str | None = None,
                 attempts: int = 0, last_status: int | None = None) -> None:
        super().__init__(message, reason_code=reason_code)
        self.attempts = attempts
        self.last_status = last_status


class ReplayExhausted(PermanentError):
    """A replay provider has played every recorded payload."""

    reason_code = "replay_exhausted"


def reject(reason: str, message: str, *, source: str | None = None,
           key: str | None = None) -> PayloadRejected:
    """Build a :class:`PayloadRejected` (``raise reject(...)``)."""
    prefix = f"{source} payload rejected" if source else "payload rejected"
    return PayloadRejected(f"{prefix} ({reason}): {message}", reason_code=reason, source=source,
                           key=key)


# --------------------------------------------------------------------------- decoding

_BOM = b"\xef\xbb\xbf"


def sniff_body(body: bytes, *, source: str | None = None) -> None:
    """Cheap check that ``body`` looks like a JSON object (no full decode)."""
    head = body[:512].lstrip()
    if head.startswith(_BOM):
        head = head[len(_BOM):].lstrip()
    if not head:
        raise reject(NOT_JSON, "empty body", source=source)
    if head[:1] == b"<":
        raise reject(HTML_NOT_JSON, f"body is HTML/XML, not JSON: {_preview(head)}",
                     source=source)
    if head[:1] not in (b"{", b"["):
        raise reject(NOT_JSON, f"body does not start a JSON document: {_preview(head)}",
                     source=source)


def decode_json(body: bytes | str, *, source: str | None = None) -> Any:
    """Decode a payload, turning every decoding failure into :class:`PayloadRejected`."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    if not isinstance(body, bytes | bytearray | memoryview):
        raise TypeError(f"payload must be bytes, not {type(body).__name__}")
    body = bytes(body)
    sniff_body(body, source=source)
    try:
        return orjson.loads(body)  # the fast path: strict RFC 8259
    except (ValueError, RecursionError):
        pass
    try:  # the slow path accepts what Python writers emit (NaN, Infinity)
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, digits
        raise reject(NOT_JSON, f"invalid JSON: {exc}", source=source) from exc


def _preview(raw: bytes, limit: int = 80) -> str:
    text = raw[:limit].decode("utf-8", "replace")
    return repr(" ".join(text.split()))


# --------------------------------------------------------------------------- numbers

_MISSING_STRINGS: Final = frozenset({"", "-", "--", "na", "n/a", "nan", "null", "none"})
_NUMERIC_TYPES: Final = frozenset({int, float})


def coerce_float(value: Any) -> tuple[float, bool]:
    """``(number, is_junk)``: NaN for absent/placeholder values, NaN + junk for garbage.

    Accepts JSON numbers and numeric strings (``"22.59"``, ``"1,234.5"``); ``None`` and
    placeholders (``"-"``, ``""``) are absent; bools, containers, non-finite numbers and
    other strings are junk.
    """
    t = type(value)
    if t is float or t is int:
        try:
            x = float(value)
        except OverflowError:
            return math.nan, True
        return (x, False) if math.isfinite(x) else (math.nan, True)
    if value is None:
        return math.nan, False
    if t is str:
        s = value.strip().replace(",", "")
        if s.lower() in _MISSING_STRINGS:
            return math.nan, False
        try:
            x = float(s)
        except ValueError:
            return math.nan, True
        return (x, False) if math.isfinite(x) else (math.nan, True)
    return math.nan, True


def to_floats(values: list[Any]) -> tuple[npt.NDArray[np.float64], int]:
    """One float64 column from raw JSON values; returns ``(array, junk_count)``."""
    if set(map(type, values)) <= _NUMERIC_TYPES:  # the normal case: one C-level pass
        try:
            arr = np.array(values, dtype=np.float64)
        except OverflowError:
            pass
        else:
            bad = ~np.isfinite(arr)
            if bad.any():
                arr[bad] = np.nan
                return arr, int(bad.sum())
            return arr, 0
    out = np.empty(len(values), dtype=np.float64)
    junk = 0
    for i, v in enumerate(values):
        x, is_junk = coerce_float(v)
        out[i] = x
        junk += is_junk
    return out, junk


# --------------------------------------------------------------------------- dates

_MONTHS: Final = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_DMY = re.compile(r"\s*(\d{1,2})-([A-Za-z]{3})-(\d{4})\s*")
_ISO = re.compile(r"\s*(\d{4})-(\d{2})-(\d{2})\s*")
_DMY_TIME = re.compile(r"\s*(\d{1,2})-([A-Za-z]{3})-(\d{4})[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*")
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()


def parse_date(text: str) -> date:
    """``DD-Mon-YYYY`` (any month case) or ISO ``YYYY-MM-DD``; ValueError otherwise."""
    m = _DMY.fullmatch(text)
    if m:
        month = _MONTHS.get(m.group(2).lower())
        if month is None:
            raise ValueError(f"unknown month in {text!r}")
        return date(int(m.group(3)), month, int(m.group(1)))
    m = _ISO.fullmatch(text)
    if m:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    raise ValueError(f"not a DD-Mon-YYYY or YYYY-MM-DD date: {text!r}")


def parse_ist_timestamp(text: str) -> datetime:
    """NSE ``DD-Mon-YYYY HH:MM[:SS]`` (IST, no zone) to an aware Asia/Kolkata datetime."""
    m = _DMY_TIME.fullmatch(text)
    if not m:
        raise ValueError(f"not a DD-Mon-YYYY HH:MM:SS timestamp: {text!r}")
    month = _MONTHS.get(m.group(2).lower())
    if month is None:
        raise ValueError(f"unknown month in {text!r}")
    return datetime(int(m.group(3)), month, int(m.group(1)), int(m.group(4)), int(m.group(5)),
                    int(m.group(6) or 0), tzinfo=IST)


def expiry_days(raw: list[Any], *, source: str, key: str) -> npt.NDArray[np.int64]:
    """Expiry strings to days since 1970-01-01, parsing each distinct string once."""
    try:
        distinct = set(raw)
    except TypeError:  # a list or object where a date string belongs
        raise reject(BAD_EXPIRY, f"non-string {key}", source=source, key=key) from None
    lut: dict[Any, int] = {}
    for s in distinct:
        if s is None:
            raise reject(SCHEMA_CHANGED, f"a leg has no {key!r}", source=source, key=key)
        if type(s) is not str:
            raise reject(BAD_EXPIRY, f"{key} {s!r} is not a string", source=source, key=key)
        try:
            lut[s] = parse_date(s).toordinal() - _EPOCH_ORDINAL
        except ValueError as exc:
            raise reject(BAD_EXPIRY, f"{key} {s!r}: {exc}", source=source, key=key) from None
    return np.fromiter(map(lut.__getitem__, raw), dtype=np.int64, count=len(raw))


# --------------------------------------------------------------------------- assembly


@dataclass(slots=True)
class LegColumns:
    """Raw per-leg values collected by a parser's single pass over the rows."""

    expiry: list[Any]
    strike: list[Any]
    is_call: list[bool]
    last: list[Any]
    bid: list[Any]
    ask: list[Any]
    volume: list[Any]
    oi: list[Any]
    oi_change: list[Any]
    iv: list[Any]  # percent

    @classmethod
    def empty(cls) -> LegColumns:
        return cls([], [], [], [], [], [], [], [], [], [])

    def __len__(self) -> int:
        return len(self.strike)


def check_spot(spot: Any, *, source: str, key: str) -> float:
    x, _ = coerce_float(spot)
    if not x > 0:  # NaN, junk, zero, negative
        raise reject(BAD_SPOT, f"{key} is {spot!r}, not a positive number", source=source,
                     key=key)
    return x


def check_leg_spots(spot: float, leg_spots: npt.NDArray[np.float64], *, source: str) -> None:
    """Reject when any leg's underlying value strays from the snapshot spot."""
    usable = leg_spots[leg_spots > 0]
    if usable.size == 0:
        return
    worst = float(np.max(np.abs(usable - spot)))
    if worst > SPOT_TOLERANCE * spot:
        raise reject(INCONSISTENT_UNDERLYING,
                     f"leg underlying values stray up to {worst:.4g} from spot {spot:.6g} "
                     f"(tolerance {SPOT_TOLERANCE:.2%})", source=source, key="underlyingValue")


def assemble(cols: LegColumns, *, symbol: str, asof: datetime, spot: float, source: str,
             wire: str, flags: Iterable[str] = (),
             oi_change: npt.NDArray[np.float64] | None = None,
             expiry_key: str = "expiry", strike_key: str = "strike") -> ChainSnapshot:
    """Vectorised: raw columns to a sorted, flagged :class:`ChainSnapshot`.

    ``wire`` names the format for error messages; ``oi_change`` overrides the raw column
    (Upstox derives it from ``oi - prev_oi``).
    """
    n = len(cols)
    if n == 0:
        raise reject(EMPTY_CHAIN, "no option legs", source=wire)
    flag_list = list(flags)
    exp = expiry_days(cols.expiry, source=wire, key=expiry_key)
    strike, _ = to_floats(cols.strike)
    bad = ~(strike > 0)
    if bad.any():
        i = int(np.argmax(bad))
        if cols.strike[i] is None:
            raise reject(SCHEMA_CHANGED, f"a leg has no {strike_key!r}", source=wire,
                         key=strike_key)
        raise reject(BAD_STRIKE, f"{strike_key} {cols.strike[i]!r} is not a positive number",
                     source=wire, key=strike_key)
    is_call = np.array(cols.is_call, dtype=np.bool_)
    floats = {}
    junk_total = 0
    for name in ("last", "bid", "ask", "iv", "volume", "oi", "oi_change"):
        if name == "oi_change" and oi_change is not None:
            floats[name] = oi_change
            continue
        floats[name], junk = to_floats(getattr(cols, name))
        junk_total += junk
    if junk_total:
        flag_list.append(f"junk_values={junk_total}")
    return assemble_arrays(
        exp, strike, is_call, last=floats["last"], bid=floats["bid"], ask=floats["ask"],
        iv_percent=floats["iv"], volume=floats["volume"], oi=floats["oi"],
        oi_change=floats["oi_change"], symbol=symbol, asof=asof, spot=spot, source=source,
        flags=flag_list)


def assemble_arrays(exp_days: npt.NDArray[np.int64], strike: npt.NDArray[np.float64],
                    is_call: npt.NDArray[np.bool_], *, last: npt.NDArray[np.float64],
                    bid: npt.NDArray[np.float64], ask: npt.NDArray[np.float64],
                    iv_percent: npt.NDArray[np.float64], volume: npt.NDArray[np.float64],
                    oi: npt.NDArray[np.float64], oi_change: npt.NDArray[np.float64],
                    symbol: str, asof: datetime, spot: float, source: str,
                    flags: Iterable[str] = ()) -> ChainSnapshot:
    """The array half of :func:`assemble`: float columns (NaN where a value is absent or
    junk; the value arrays are modified in place) to a sorted, flagged snapshot.

    Prices and IV (in percent) that are not positive, and volume and OI that are negative,
    become NaN with their :class:`Missing` flag; IV is divided by 100; a leg with a last
    price and no volume today is ``STALE_PRICE``; legs are sorted by expiry, strike, CE
    before PE, and a repeated leg is dropped (the first kept, ``duplicate_legs=N``).
    ``exp_days`` counts days since 1970-01-01. The market simulator builds its snapshots
    through this too (:meth:`~shared.adapters.providers.simulator.MarketSimulator.snapshot_at`).
    """
    n = strike.shape[0]
    flag_list = list(flags)
    missing = np.zeros(n, dtype=np.uint16)

    def positive(arr: npt.NDArray[np.float64], flag: Missing) -> npt.NDArray[np.float64]:
        gone = ~(arr > 0)  # vendor zero, negative, absent, junk
        arr[gone] = np.nan
        missing[gone] |= np.uint16(flag)
        return arr

    def non_negative(arr: npt.NDArray[np.float64], flag: Missing) -> npt.NDArray[np.float64]:
        gone = ~(arr >= 0)
        arr[gone] = np.nan
        missing[gone] |= np.uint16(flag)
        return arr

    last = positive(last, Missing.LAST_PRICE)
    bid = positive(bid, Missing.BID)
    ask = positive(ask, Missing.ASK)
    iv = positive(iv_percent, Missing.VENDOR_IV) / 100.0
    volume = non_negative(volume, Missing.VOLUME)
    oi = non_negative(oi, Missing.OI)
    missing[(last > 0) & (volume == 0)] |= np.uint16(Missing.STALE_PRICE)

    exp = exp_days
    order = np.lexsort((~is_call, strike, exp))  # expiry, strike, CE before PE
    exp, strike, is_call = exp[order], strike[order], is_call[order]
    dup = np.zeros(n, dtype=np.bool_)
    dup[1:] = (exp[1:] == exp[:-1]) & (strike[1:] == strike[:-1]) & (is_call[1:] == is_call[:-1])
    if dup.any():  # keep the first occurrence (lexsort is stable)
        flag_list.append(f"duplicate_legs={int(dup.sum())}")
        order = order[~dup]
        keep = ~dup
        exp, strike, is_call = exp[keep], strike[keep], is_call[keep]

    expiry = exp.astype("datetime64[D]")
    expiries = tuple(date.fromordinal(int(d) + _EPOCH_ORDINAL) for d in np.unique(exp))
    return ChainSnapshot(
        symbol=symbol, asof=asof, spot=float(spot), source=source, expiries=expiries,
        expiry=expiry, strike=strike, is_call=is_call, last=last[order], bid=bid[order],
        ask=ask[order], volume=volume[order], oi=oi[order], oi_change=oi_change[order],
        vendor_iv=iv[order], missing=missing[order], flags=tuple(flag_list))


# --------------------------------------------------------------------------- HTTP

T = TypeVar("T")

BROWSER_HEADERS: Final = {
    "User-Agent": ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                   "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"),
    "Accept": "application/json, text/plain, */*",
    "Accept-Language": "en-US,en;q=0.9",
    "Accept-Encoding": "gzip, deflate",
    "Connection": "keep-alive",
}


@dataclass(frozen=True, slots=True)
class HttpPolicy:
    """Timeouts, retries and pacing for one provider."""

    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    max_attempts: int = 4  # total tries, first one included
    backoff_initial: float = 1.0  # seconds before the 2nd try; doubles each time
    backoff_max: float = 20.0
    jitter: float = 1.0  # up to this many seconds of random jitter per wait
    min_interval: float = 1.0  # at least this long between two requests to the provider
    retry_after_cap: float = 60.0  # honour Retry-After up to this many seconds

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)


class RateLimiter:
    """At most one request per ``min_interval`` seconds (thread-safe; callers queue)."""

    def __init__(self, min_interval: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.min_interval = min_interval
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = -math.inf

    def wait(self) -> float:
        """Block until a request may go; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            delay = self._next - now
            if delay > 0:
                self._sleep(delay)
                now = self._clock()
            self._next = now + self.min_interval
            return max(delay, 0.0)


class RetryableFetch(Exception):
    """One attempt failed in a way another attempt may fix (internal to the fetch loop)."""

    def __init__(self, message: str, *, kind: str, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind  # timeout | connection | rate_limited | server_error | blocked
        self.status = status
        self.retry_after = retry_after


_EXHAUSTED_REASON: Final = {
    "timeout": "provider_timeout",
    "rate_limited": "provider_rate_limited",
    "blocked": "provider_blocked",
}


class HttpFetcher:
    """A ``requests.Session`` with pacing, timeouts and tenacity retries."""

    def __init__(self, name: str, *, session: requests.Session | None = None,
                 policy: HttpPolicy | None = None, headers: dict[str, str] | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        import requests

        self.name = name
        self.policy = policy or HttpPolicy()
        self.session = session if session is not None else requests.Session()
        if headers:
            self.session.headers.update(headers)
        self._sleep = sleep
        self.limiter = RateLimiter(self.policy.min_interval, clock=clock, sleep=sleep)
        self.requests_made = 0

    def close(self) -> None:
        self.session.close()

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        """One paced GET; timeouts and connection errors become :class:`RetryableFetch`."""
        import requests

        self.limiter.wait()
        self.requests_made += 1
        kwargs.setdefault("timeout", self.policy.timeout)
        try:
            return self.session.get(url, **kwargs)
        except requests.Timeout as exc:
            raise RetryableFetch(f"{self.name}: timed out on {_strip_query(url)}: {exc}",
                                 kind="timeout") from exc
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise RetryableFetch(f"{self.name}: connection failed to {_strip_query(url)}: "
                                 f"{type(exc).__name__}", kind="connection") from exc

    @staticmethod
    def raise_if_retryable(resp: requests.Response) -> None:
        """429 and 5xx are worth another try (429 honours ``Retry-After`` seconds)."""
        code = resp.status_code
        if code == 429:
            raise RetryableFetch(f"HTTP 429 from {_strip_query(resp.url)}", kind="rate_limited",
                                 status=code, retry_after=_retry_after(resp))
        if 500 <= code <= 599:
            raise RetryableFetch(f"HTTP {code} from {_strip_query(resp.url)}",
                                 kind="server_error", status=code,
                                 retry_after=_retry_after(resp))

    def run(self, attempt: Callable[[], T], *, what: str) -> T:
        """Call ``attempt`` until it returns, retrying :class:`RetryableFetch` with backoff.

        Any other exception (permanent errors) propagates at once. When the attempts are
        spent, raises :class:`ProviderUnavailable`.
        """
        from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

        p = self.policy

        def wait(state: RetryCallState) -> float:
            """Exponential backoff plus jitter, at least any ``Retry-After`` the server sent."""
            exponent = max(0, state.attempt_number - 1)
            try:
                delay = p.backoff_initial * 2.0 ** exponent
            except OverflowError:
                delay = math.inf
            delay = min(delay + random.uniform(0.0, p.jitter), p.backoff_max)
            exc = state.outcome.exception() if state.outcome else None
            hint = getattr(exc, "retry_after", None)
            if hint is not None:
                delay = max(delay, min(hint, p.retry_after_cap))
            return delay

        retrying = Retrying(stop=stop_after_attempt(max(1, p.max_attempts)), wait=wait,
                            retry=retry_if_exception_type(RetryableFetch), reraise=True,
                            sleep=self._sleep)
        try:
            return retrying(attempt)
        except RetryableFetch as exc:
            attempts = retrying.statistics.get("attempt_number", p.max_attempts)
            raise ProviderUnavailable(
                f"{what}: gave up after {attempts} attempt(s): {exc}",
                reason_code=_EXHAUSTED_REASON.get(exc.kind, "provider_unavailable"),
                attempts=attempts, last_status=exc.status) from exc


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # HTTP-date form: fall back to our own backoff
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _strip_query(url: str | None) -> str:
    return (url or "").split("?", 1)[0]
