"""Option-chain parsing (NSE website, Upstox v2): pure functions over real payloads.

Real kit payloads (``../shared/fixtures``) are parsed when present, trimmed copies in
``tests/fixtures/chains`` always. Every leg is checked against the raw JSON independently.
No network: the only I/O is reading fixture files.
"""

from __future__ import annotations

import copy
import json
import math
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.adapters.providers import (
    ChainProvider,
    NseProvider,
    PayloadRejected,
    RawPayload,
    ReplayExhausted,
    ReplayProvider,
    UpstoxProvider,
    detect_source,
    parse_nse,
    parse_payload,
    parse_upstox,
)
from shared.adapters.providers.base import (
    RateLimiter,
    coerce_float,
    parse_date,
    parse_ist_timestamp,
)
from shared.domain.chain import ChainSnapshot, Missing
from shared.errors import PermanentError

HERE = Path(__file__).resolve()
KIT = HERE.parents[2].parent / "shared" / "fixtures"
TRIMMED = HERE.parents[1] / "fixtures" / "chains"
IST = "Asia/Kolkata"
UPSTOX_ASOF = datetime(2024, 6, 20, 9, 45, tzinfo=UTC)  # 15:15 IST

# What each payload says about itself (same for a file and its trimmed copy).
EXPECTED = {
    "nse_oc_NIFTY_2019-08-23_aadityatamrakar": ("NIFTY", datetime(2019, 8, 23, 15, 30), 10829.35),
    "nse_oc_NIFTY_2022-03-24_lakk1": ("NIFTY", datetime(2022, 3, 24, 15, 30), 17222.75),
    "nse_oc_BANKNIFTY_2022-03-28_lakk1": ("BANKNIFTY", datetime(2022, 3, 28, 15, 30), 35710.5),
    "nse_oc_NIFTY_2025-07-16_ethanelliott50": ("NIFTY", datetime(2025, 7, 16, 15, 30), 25212.05),
    "nse_oc_equity_RELIANCE_2025-07-17_ethanelliott50":
        ("RELIANCE", datetime(2025, 7, 17, 15, 30), 1478.7),
    "upstox_oc_NIFTY_exp2024-06-20_spot23593.5_AlgoTrade": ("NIFTY", None, 23593.5),
    "upstox_docs_example_v2_option_chain_with_pop": ("NIFTY", None, 22976.2),
}


def _kit(sub: str) -> list[Path | None]:
    folder = KIT / sub
    return sorted(folder.glob("*.json")) if folder.is_dir() else [None]


def _trimmed(prefix: str) -> list[Path]:
    return sorted(TRIMMED.glob(f"{prefix}*.json"))


def _id(p: Path | None) -> str:
    return "kit-absent" if p is None else p.stem


def _need(path: Path | None) -> Path:
    if path is None:
        pytest.skip(f"{KIT} is absent (fresh clone): only the trimmed copies are tested")
    return path


def _stem(path: Path) -> str:
    return path.stem.removesuffix("_trim")


NSE_FILES: list[Path | None] = [*_kit("nse_option_chain"), *_trimmed("nse_")]
UPSTOX_FILES: list[Path | None] = [*_kit("upstox_option_chain"), *_trimmed("upstox_")]


# --------------------------------------------------------------------------- invariants


def assert_valid(snap: ChainSnapshot) -> None:
    """What every snapshot from any payload must satisfy."""
    n = snap.n_legs
    assert n > 0
    assert snap.asof.tzinfo is not None and snap.asof.utcoffset() is not None
    assert math.isfinite(snap.spot) and snap.spot > 0
    assert snap.symbol and snap.symbol == snap.symbol.upper()
    for name in ("expiry", "strike", "is_call", "last", "bid", "ask", "volume", "oi",
                 "oi_change", "vendor_iv", "missing"):
        assert getattr(snap, name).shape == (n,)
    assert snap.strike.dtype == np.float64 and snap.missing.dtype == np.uint16
    assert snap.expiry.dtype == np.dtype("datetime64[D]")
    assert np.all(np.isfinite(snap.strike)) and np.all(snap.strike > 0)
    # sorted by (expiry, strike, CE before PE), no duplicate legs
    key = np.lexsort((~snap.is_call, snap.strike, snap.expiry))
    assert np.array_equal(key, np.arange(n))
    same = ((snap.expiry[1:] == snap.expiry[:-1]) & (snap.strike[1:] == snap.strike[:-1])
            & (snap.is_call[1:] == snap.is_call[:-1]))
    assert not same.any()
    assert list(snap.expiries) == sorted(set(snap.expiries))
    assert [np.datetime64(d, "D") for d in snap.expiries] == list(np.unique(snap.expiry))
    # never a fake number: prices and IV are positive or NaN, never 0; counts >= 0 or NaN
    for name, flag in (("last", Missing.LAST_PRICE), ("bid", Missing.BID), ("ask", Missing.ASK),
                       ("vendor_iv", Missing.VENDOR_IV)):
        arr = getattr(snap, name)
        assert np.all(np.isnan(arr) | (np.isfinite(arr) & (arr > 0))), name
        assert np.array_equal(np.isnan(arr), (snap.missing & flag) != 0), name
    for name, flag in (("volume", Missing.VOLUME), ("oi", Missing.OI)):
        arr = getattr(snap, name)
        assert np.all(np.isnan(arr) | (np.isfinite(arr) & (arr >= 0))), name
        assert np.array_equal(np.isnan(arr), (snap.missing & flag) != 0), name
    assert np.all(np.isnan(snap.oi_change) | np.isfinite(snap.oi_change))
    stale = (snap.missing & Missing.STALE_PRICE) != 0
    assert np.array_equal(stale, (snap.last > 0) & (snap.volume == 0))
    assert not np.any((snap.missing & Missing.LEG_ABSENT) != 0)  # absent legs are not emitted


def _leg_index(snap: ChainSnapshot) -> dict[tuple[date, float, bool], int]:
    days = snap.expiry.astype(object)
    return {(days[i], float(snap.strike[i]), bool(snap.is_call[i])): i for i in range(snap.n_legs)}


def _zero_is_missing(snap: ChainSnapshot, i: int, raw: float, arr: np.ndarray, flag: Missing,
                     scale: float = 1.0) -> None:
    if raw == 0:
        assert math.isnan(arr[i]) and snap.missing[i] & flag
    else:
        assert arr[i] == pytest.approx(raw / scale, rel=1e-12) and not snap.missing[i] & flag


# --------------------------------------------------------------------------- NSE files


@pytest.mark.parametrize("path", NSE_FILES, ids=_id)
def test_nse_payload_matches_raw_json_leg_by_leg(path: Path | None) -> None:
    path = _need(path)
    body = path.read_bytes()
    raw = json.loads(body)
    rows = raw["records"]["data"]
    snap = parse_payload(body)
    assert_valid(snap)
    symbol, stamp, spot = EXPECTED[_stem(path)]
    assert snap.source == "nse" and snap.symbol == symbol and snap.spot == spot
    assert str(snap.asof.tzinfo) == IST and snap.asof.replace(tzinfo=None) == stamp

    n_ce = sum("CE" in r for r in rows)
    n_pe = sum("PE" in r for r in rows)
    assert snap.n_legs == n_ce + n_pe  # one leg per present CE/PE object
    assert int(snap.is_call.sum()) == n_ce
    assert f"absent_ce={len(rows) - n_ce}" in snap.flags
    assert f"absent_pe={len(rows) - n_pe}" in snap.flags
    assert len(rows) - n_ce > 0 and len(rows) - n_pe > 0  # every file has one-sided rows
    assert set(snap.expiries) == {parse_date(r["expiryDate"]) for r in rows}

    index = _leg_index(snap)
    for r in rows:
        for side in ("CE", "PE"):
            if side not in r:
                continue
            leg = r[side]
            i = index[(parse_date(r["expiryDate"]), float(r["strikePrice"]), side == "CE")]
            assert snap.strike[i] == r["strikePrice"]
            _zero_is_missing(snap, i, leg["lastPrice"], snap.last, Missing.LAST_PRICE)
            _zero_is_missing(snap, i, leg["bidprice"], snap.bid, Missing.BID)
            _zero_is_missing(snap, i, leg["askPrice"], snap.ask, Missing.ASK)
            _zero_is_missing(snap, i, leg["impliedVolatility"], snap.vendor_iv,
                             Missing.VENDOR_IV, scale=100.0)
            assert snap.oi[i] == leg["openInterest"]  # fractional OI preserved exactly
            assert snap.oi_change[i] == leg["changeinOpenInterest"]
            assert snap.volume[i] == leg["totalTradedVolume"]
            stale = leg["lastPrice"] > 0 and leg["totalTradedVolume"] == 0
            assert bool(snap.missing[i] & Missing.STALE_PRICE) == stale
            if stale:
                assert snap.last[i] == leg["lastPrice"]  # kept, only flagged
    # decimal IVs: NSE percent / 100; even 227 % is 2.27
    assert np.nanmax(snap.vendor_iv) < 5.0
    assert np.nanmin(snap.vendor_iv) > 0.0


@pytest.mark.parametrize("path", NSE_FILES, ids=_id)
def test_nse_quirks_present_in_each_file(path: Path | None) -> None:
    path = _need(path)
    snap = parse_payload(path.read_bytes(), source="nse")
    flagged = lambda f: int(((snap.missing & f) != 0).sum())  # noqa: E731
    assert flagged(Missing.LAST_PRICE) > 0
    assert flagged(Missing.VENDOR_IV) > 0
    assert flagged(Missing.BID) + flagged(Missing.ASK) > 0
    # IV 0 on traded legs still means "no vendor IV"
    traded_no_iv = (snap.volume > 0) & np.isnan(snap.vendor_iv)
    assert traded_no_iv.any()


def test_fractional_open_interest_is_kept() -> None:
    snap = parse_payload((TRIMMED / "nse_oc_NIFTY_2025-07-16_ethanelliott50_trim.json")
                         .read_bytes())
    frac = snap.oi[np.isfinite(snap.oi) & (snap.oi % 1 != 0)]
    assert frac.size > 0
    assert 4.333333333333333 in frac.tolist()
    i = _leg_index(snap)[(date(2026, 6, 25), 12000.0, False)]
    assert snap.oi[i] == 4.333333333333333 and not snap.is_call[i]


def test_interleaved_expiries_are_sorted() -> None:
    body = (TRIMMED / "nse_oc_NIFTY_2019-08-23_aadityatamrakar_trim.json").read_bytes()
    rows = json.loads(body)["records"]["data"]
    raw_order = [parse_date(r["expiryDate"]) for r in rows]
    assert raw_order != sorted(raw_order)  # the file interleaves expiries
    snap = parse_payload(body)
    assert_valid(snap)
    assert snap.expiries[0] == date(2019, 8, 29)


def test_ce_only_and_pe_only_rows_give_one_leg() -> None:
    body = (TRIMMED / "nse_oc_equity_RELIANCE_2025-07-17_ethanelliott50_trim.json").read_bytes()
    rows = json.loads(body)["records"]["data"]
    snap = parse_payload(body)
    index = _leg_index(snap)
    for r in rows:
        key = (parse_date(r["expiryDate"]), float(r["strikePrice"]))
        assert ((*key, True) in index) == ("CE" in r)
        assert ((*key, False) in index) == ("PE" in r)


def test_index_object_with_numeric_strings_is_tolerated() -> None:
    body = (TRIMMED / "nse_oc_BANKNIFTY_2022-03-28_lakk1_trim.json").read_bytes()
    index = json.loads(body)["records"]["index"]
    assert isinstance(index["pe"], str) and isinstance(index["advances"], str)
    snap = parse_payload(body)
    assert snap.symbol == "BANKNIFTY"
    assert "index_quote_mismatch" not in snap.flags


def test_equity_float_strikes() -> None:
    obj = json.loads((TRIMMED / "nse_oc_equity_RELIANCE_2025-07-17_ethanelliott50_trim.json")
                     .read_bytes())
    odd = [181.65, 211.65, 77.1, 126.4]
    for row, strike in zip(obj["records"]["data"], odd, strict=False):
        row["strikePrice"] = strike
        for side in ("CE", "PE"):
            if side in row:
                row[side]["strikePrice"] = strike
    snap = parse_nse(json.dumps(obj).encode())
    assert_valid(snap)
    for strike in odd:
        assert strike in snap.strike.tolist()


# --------------------------------------------------------------------------- Upstox files


@pytest.mark.parametrize("path", UPSTOX_FILES, ids=_id)
def test_upstox_payload_matches_raw_json_leg_by_leg(path: Path | None) -> None:
    path = _need(path)
    body = path.read_bytes()
    rows = json.loads(body)["data"]
    snap = parse_payload(body, asof=UPSTOX_ASOF)
    assert_valid(snap)
    symbol, _, spot = EXPECTED[_stem(path)]
    assert snap.source == "upstox" and snap.symbol == symbol and snap.spot == spot
    assert snap.asof == UPSTOX_ASOF and str(snap.asof.tzinfo) == IST  # the fetch time, in IST
    assert snap.n_legs == 2 * len(rows) and len(snap.expiries) == 1

    index = _leg_index(snap)
    for r in rows:
        for side, is_call in (("call_options", True), ("put_options", False)):
            md, greeks = r[side]["market_data"], r[side]["option_greeks"]
            i = index[(date.fromisoformat(r["expiry"]), float(r["strike_price"]), is_call)]
            _zero_is_missing(snap, i, md["ltp"], snap.last, Missing.LAST_PRICE)
            _zero_is_missing(snap, i, md["bid_price"], snap.bid, Missing.BID)
            _zero_is_missing(snap, i, md["ask_price"], snap.ask, Missing.ASK)
            _zero_is_missing(snap, i, greeks["iv"], snap.vendor_iv, Missing.VENDOR_IV, 100.0)
            assert snap.oi[i] == md["oi"] and snap.volume[i] == md["volume"]
            assert snap.oi_change[i] == md["oi"] - md["prev_oi"]
            stale = md["ltp"] > 0 and md["volume"] == 0
            assert bool(snap.missing[i] & Missing.STALE_PRICE) == stale


def test_upstox_expiry_day_iv_is_decimal() -> None:
    body = (TRIMMED / "upstox_oc_NIFTY_exp2024-06-20_spot23593.5_AlgoTrade_trim.json")
    snap = parse_payload(body.read_bytes(), asof=UPSTOX_ASOF)
    assert snap.expiries == (date(2024, 6, 20),)
    assert 3.0 < np.nanmax(snap.vendor_iv) < 7.0  # 614 % on expiry day -> 6.14
    assert ((snap.missing & Missing.VENDOR_IV) != 0).any()  # deep ITM iv 0


def test_upstox_pop_field_is_optional() -> None:
    body = (TRIMMED / "upstox_docs_example_v2_option_chain_with_pop.json").read_bytes()
    snap = parse_upstox(body, asof=UPSTOX_ASOF)
    assert snap.n_legs == 2 and snap.strike.tolist() == [21100.0, 21100.0]
    assert snap.vendor_iv.tolist() == pytest.approx([2.6231, 0.5078])
    assert bool(snap.missing[0] & Missing.STALE_PRICE)  # call: ltp 2449.9, volume 0


def test_upstox_reserialised_floats_equal_ints() -> None:
    path = TRIMMED / "upstox_oc_NIFTY_exp2024-06-20_spot23593.5_AlgoTrade_trim.json"
    obj = json.loads(path.read_bytes())

    def floats(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: floats(v) for k, v in x.items()}
        if isinstance(x, list):
            return [floats(v) for v in x]
        return float(x) if type(x) is int else x

    a = parse_payload(path.read_bytes(), asof=UPSTOX_ASOF)
    b = parse_payload(json.dumps(floats(obj)).encode(), asof=UPSTOX_ASOF)
    assert b'"oi": 2125.0' in json.dumps(floats(obj)).encode()
    for name in ("strike", "last", "bid", "ask", "volume", "oi", "oi_change", "vendor_iv",
                 "missing"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_upstox_symbol_from_caller_and_key() -> None:
    body = (TRIMMED / "upstox_docs_example_v2_option_chain_with_pop.json").read_bytes()
    assert parse_upstox(body, asof=UPSTOX_ASOF, symbol="nifty").symbol == "NIFTY"
    assert parse_upstox(body, asof=UPSTOX_ASOF, symbol="NSE_INDEX|Nifty 50").symbol == "NIFTY"
    with pytest.raises(PayloadRejected) as exc:
        parse_upstox(body, asof=UPSTOX_ASOF, symbol="BANKNIFTY")
    assert exc.value.reason_code == "inconsistent_underlying"
    unknown = body.replace(b"NSE_INDEX|Nifty 50", b"NSE_EQ|INE002A01018")
    assert parse_upstox(unknown, asof=UPSTOX_ASOF).symbol == "INE002A01018"
    assert parse_upstox(unknown, asof=UPSTOX_ASOF, symbol="RELIANCE").symbol == "RELIANCE"


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize("path", NSE_FILES + UPSTOX_FILES, ids=_id)
def test_detect_source(path: Path | None) -> None:
    path = _need(path)
    assert detect_source(path.read_bytes()) == ("nse" if path.name.startswith("nse_")
                                                else "upstox")


def test_detect_source_rejects_other_json() -> None:
    with pytest.raises(PayloadRejected) as exc:
        detect_source(b'{"hello": "world"}')
    assert exc.value.reason_code == "unknown_format"
    with pytest.raises(PayloadRejected) as exc:
        detect_source(b"<html><body>Access Denied</body></html>")
    assert exc.value.reason_code == "html_not_json"


# --------------------------------------------------------------------------- rejections


def _nse_obj() -> dict[str, Any]:
    return json.loads((TRIMMED / "nse_oc_NIFTY_2025-07-16_ethanelliott50_trim.json")
                      .read_bytes())


def _upstox_obj() -> dict[str, Any]:
    return json.loads((TRIMMED / "upstox_oc_NIFTY_exp2024-06-20_spot23593.5_AlgoTrade_trim.json")
                      .read_bytes())


def _rejected(body: bytes | dict[str, Any], *, source: str = "nse", **kw: Any) -> PayloadRejected:
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    with pytest.raises(PayloadRejected) as exc:
        parse_payload(body, source=source, **kw)
    assert isinstance(exc.value, PermanentError)
    return exc.value


@pytest.mark.parametrize("body, reason", [
    (b"", "not_json"),
    (b"   \n", "not_json"),
    (b"garbage", "not_json"),
    (b'{"records": {"data": [', "not_json"),
    (b"\xff\xfe{}", "not_json"),
    (b"<!DOCTYPE html>\n<html><head><title>Access Denied</title></head></html>", "html_not_json"),
    (b"\n  <html><body>Resource not found</body></html>", "html_not_json"),
    (b"[1, 2]", "schema_changed"),
    (b"{}", "schema_changed"),
    (b'{"filtered": {"data": []}}', "schema_changed"),
    (b'{"records": []}', "schema_changed"),
    (b'{"records": {"timestamp": "16-Jul-2025 15:30:00"}}', "schema_changed"),
    (b'{"records": {"data": {}}}', "schema_changed"),
    (b'{"records": {"data": [], "timestamp": "16-Jul-2025 15:30:00"}}', "empty_chain"),
    (b'{"records": {"data": [{"strikePrice": 1, "expiryDate": "17-Jul-2025"}], '
     b'"timestamp": "16-Jul-2025 15:30:00", "underlyingValue": 1}}', "empty_chain"),
])
def test_nse_rejections(body: bytes, reason: str) -> None:
    assert _rejected(body).reason_code == reason


def test_schema_changed_names_the_key() -> None:
    err = _rejected(b'{"filtered": {}}')
    assert err.key == "records" and "'records'" in str(err)
    obj = _nse_obj()
    del obj["records"]["data"]
    err = _rejected(obj)
    assert err.reason_code == "schema_changed" and err.key == "records.data"
    assert "records.data" in str(err)
    obj = _nse_obj()
    del obj["records"]["timestamp"]
    assert _rejected(obj).key == "records.timestamp"
    obj = _nse_obj()
    row = obj["records"]["data"][0]
    del row["expiryDate"]
    for side in ("CE", "PE"):
        row.get(side, {}).pop("expiryDate", None)
    err = _rejected(obj)
    assert err.reason_code == "schema_changed" and err.key == "expiryDate"


@pytest.mark.parametrize("stamp", ["2025-07-16T15:30:00", "16-Jly-2025 15:30:00", "16-Jul-2025",
                                   "32-Jul-2025 15:30:00", "16-Jul-2025 25:30:00", "", 20250716])
def test_bad_timestamp(stamp: Any) -> None:
    obj = _nse_obj()
    obj["records"]["timestamp"] = stamp
    assert _rejected(obj).reason_code == "bad_timestamp"


@pytest.mark.parametrize("spot", [0, -5, "abc", None, [], float("nan")])
def test_bad_spot(spot: Any) -> None:
    obj = _nse_obj()
    obj["records"]["underlyingValue"] = spot
    if spot is None:  # falls back to the legs' underlyingValue...
        snap = parse_payload(json.dumps(obj).encode())
        assert snap.spot == 25212.05 and "spot_from_legs" in snap.flags
        for row in obj["records"]["data"]:  # ...unless they have none either
            for side in ("CE", "PE"):
                row.get(side, {}).pop("underlyingValue", None)
    assert _rejected(obj).reason_code == "bad_spot"


def test_inconsistent_underlying() -> None:
    obj = _nse_obj()
    obj["records"]["data"][3]["PE"]["underlyingValue"] = 25212.05 * 1.05
    err = _rejected(obj)
    assert err.reason_code == "inconsistent_underlying"
    obj = _nse_obj()
    obj["records"]["data"][3]["PE"]["underlyingValue"] = 25212.05 + 1.0  # within tolerance
    assert parse_payload(json.dumps(obj).encode()).spot == 25212.05
    obj = _nse_obj()
    obj["records"]["data"][3]["PE"]["underlying"] = "BANKNIFTY"
    assert _rejected(obj).reason_code == "inconsistent_underlying"
    assert _rejected(_nse_obj(), symbol="BANKNIFTY").reason_code == "inconsistent_underlying"
    assert parse_payload(json.dumps(_nse_obj()).encode(), symbol="nifty").symbol == "NIFTY"


def test_symbol_from_caller_when_legs_do_not_say() -> None:
    obj = _nse_obj()
    for row in obj["records"]["data"]:
        for side in ("CE", "PE"):
            row.get(side, {}).pop("underlying", None)
    assert parse_payload(json.dumps(obj).encode(), symbol="NIFTY").symbol == "NIFTY"
    assert _rejected(obj).reason_code == "missing_symbol"


def test_bad_expiry_and_strike() -> None:
    obj = _nse_obj()
    obj["records"]["data"][0]["expiryDate"] = "2025-13-45"
    assert _rejected(obj).reason_code == "bad_expiry"
    obj = _nse_obj()
    obj["records"]["data"][0]["strikePrice"] = "abc"
    assert _rejected(obj).reason_code == "bad_strike"
    obj = _nse_obj()
    obj["records"]["data"][0]["strikePrice"] = 0
    assert _rejected(obj).reason_code == "bad_strike"


def test_upstox_rejections() -> None:
    error = {"status": "error", "errors": [{"errorCode": "UDAPI100050",
                                            "message": "Invalid token used to access API"}]}
    err = _rejected(error, source="auto", asof=UPSTOX_ASOF)
    assert err.reason_code == "api_error" and "UDAPI100050" in str(err)
    assert _rejected({"status": "success"}, source="upstox",
                     asof=UPSTOX_ASOF).reason_code == "schema_changed"
    assert _rejected({"status": "success", "data": []}, source="upstox",
                     asof=UPSTOX_ASOF).reason_code == "empty_chain"
    obj = _upstox_obj()
    obj["data"][2]["underlying_spot_price"] = 20000.0
    assert _rejected(obj, source="upstox",
                     asof=UPSTOX_ASOF).reason_code == "inconsistent_underlying"
    obj = _upstox_obj()
    for row in obj["data"]:
        row["underlying_spot_price"] = 0
    assert _rejected(obj, source="upstox", asof=UPSTOX_ASOF).reason_code == "bad_spot"
    assert _rejected(_upstox_obj(), source="upstox",
                     asof=datetime(2024, 6, 20, 15, 15)).reason_code == "bad_timestamp"
    with pytest.raises(ValueError, match="asof"):
        parse_payload(json.dumps(_upstox_obj()).encode())


def test_upstox_missing_leg_and_market_data() -> None:
    obj = _upstox_obj()
    del obj["data"][0]["call_options"]
    obj["data"][1]["put_options"] = None
    del obj["data"][2]["call_options"]["market_data"]
    del obj["data"][3]["put_options"]["option_greeks"]
    snap = parse_upstox(json.dumps(obj).encode(), asof=UPSTOX_ASOF)
    assert_valid(snap)
    assert snap.n_legs == 2 * len(obj["data"]) - 2
    assert "absent_ce=1" in snap.flags and "absent_pe=1" in snap.flags
    i = _leg_index(snap)[(date(2024, 6, 20), float(obj["data"][2]["strike_price"]), True)]
    everything = Missing.LAST_PRICE | Missing.BID | Missing.ASK | Missing.OI | Missing.VOLUME
    assert snap.missing[i] & everything == everything and math.isnan(snap.oi_change[i])


# --------------------------------------------------------------------------- coercion


def test_month_names_any_case_and_intraday_stamp() -> None:
    obj = _nse_obj()
    obj["records"]["timestamp"] = "16-JUL-2025 10:47:19"
    for row in obj["records"]["data"]:
        for holder in (row, row.get("CE") or {}, row.get("PE") or {}):
            if "expiryDate" in holder:
                holder["expiryDate"] = holder["expiryDate"].upper()
    snap = parse_payload(json.dumps(obj).encode())
    assert snap.asof == datetime(2025, 7, 16, 10, 47, 19, tzinfo=snap.asof.tzinfo)
    assert snap.asof.utcoffset() == timedelta(hours=5, minutes=30)
    assert parse_date("17-jul-2025") == parse_date("17-JUL-2025") == date(2025, 7, 17)
    assert parse_ist_timestamp("01-jan-2024 09:15").isoformat() == "2024-01-01T09:15:00+05:30"


def test_junk_numbers_become_flagged_nan() -> None:
    obj = _nse_obj()
    row = next(r for r in obj["records"]["data"] if "CE" in r and "PE" in r)
    row["CE"].update(lastPrice="abc", bidprice=None, askPrice=True, impliedVolatility="-",
                     openInterest=[1], totalTradedVolume=-3, changeinOpenInterest={"x": 1})
    row["PE"].update(lastPrice="12.5", bidprice="1,234.5", askPrice=1e400)
    del row["PE"]["impliedVolatility"]
    snap = parse_payload(json.dumps(obj).encode())
    assert_valid(snap)
    index = _leg_index(snap)
    key = (parse_date(row["expiryDate"]), float(row["strikePrice"]))
    ce, pe = index[(*key, True)], index[(*key, False)]
    all_flags = (Missing.LAST_PRICE | Missing.BID | Missing.ASK | Missing.VENDOR_IV | Missing.OI
                 | Missing.VOLUME)
    assert snap.missing[ce] & all_flags == all_flags and math.isnan(snap.oi_change[ce])
    assert snap.last[pe] == 12.5 and snap.bid[pe] == 1234.5
    assert math.isnan(snap.ask[pe]) and math.isnan(snap.vendor_iv[pe])
    assert any(f.startswith("junk_values=") for f in snap.flags)


def test_bidprice_alternative_spelling_and_duplicates() -> None:
    obj = _nse_obj()
    for row in obj["records"]["data"]:
        for side in ("CE", "PE"):
            if side in row:
                row[side]["bidPrice"] = row[side].pop("bidprice")
    obj["records"]["data"].append(copy.deepcopy(obj["records"]["data"][5]))
    snap = parse_payload(json.dumps(obj).encode())
    assert_valid(snap)
    assert np.isfinite(snap.bid).any()
    assert any(f.startswith("duplicate_legs=") for f in snap.flags)


def test_coerce_float() -> None:
    assert coerce_float(4) == (4.0, False)
    assert coerce_float(" 22.59 ") == (22.59, False)
    assert math.isnan(coerce_float("-")[0]) and not coerce_float("-")[1]
    assert math.isnan(coerce_float(None)[0]) and not coerce_float(None)[1]
    for junk in ("abc", True, [], {}, float("inf"), 10**400, "nan"):
        x, is_junk = coerce_float(junk)
        assert math.isnan(x) and (is_junk or junk == "nan")


# --------------------------------------------------------------------------- hostile payloads

_JUNK = st.one_of(st.none(), st.booleans(), st.sampled_from(["", "-", "abc", "1e5x", "NaN", "inf"]),
                  st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2),
                                                                        st.integers(), max_size=1))
_NUMBER = st.one_of(st.just(0), st.just(0.0), st.integers(-5, 10**7),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.floats(0.05, 5000).map(lambda x: round(x, 2)),
                    st.integers(-10, 10**6).map(str), st.just(10**400))
_VALUE = st.one_of(_NUMBER, _NUMBER, _NUMBER, _JUNK)
_LEG_KEYS = ("lastPrice", "bidprice", "askPrice", "impliedVolatility", "openInterest",
             "changeinOpenInterest", "totalTradedVolume", "underlyingValue")


@st.composite
def _mutated_real_payload(draw: st.DrawFn) -> bytes:
    """A real trimmed NSE payload with random zeros, junk, type flips and missing legs."""
    name = draw(st.sampled_from(sorted(p.name for p in TRIMMED.glob("nse_*.json"))))
    obj = copy.deepcopy(_REAL[name])
    rows = obj["records"]["data"]
    for _ in range(draw(st.integers(0, 12))):
        row = rows[draw(st.integers(0, len(rows) - 1))]
        action = draw(st.sampled_from(["set", "set", "set", "drop_key", "drop_leg", "float",
                                       "junk_leg", "row_field"]))
        side = draw(st.sampled_from(["CE", "PE"]))
        leg = row.get(side)
        if action == "drop_leg":
            row.pop(side, None)
        elif action == "junk_leg":
            row[side] = draw(_JUNK)
        elif action == "row_field":
            row[draw(st.sampled_from(["strikePrice", "expiryDate"]))] = draw(
                st.one_of(_VALUE, st.sampled_from(["31-Jul-2025", "31-jul-2025", "x"])))
        elif isinstance(leg, dict):
            key = draw(st.sampled_from(_LEG_KEYS + ("underlying", "expiryDate", "strikePrice")))
            if action == "drop_key":
                leg.pop(key, None)
            elif action == "float":
                if type(leg.get(key)) is int and abs(leg[key]) < 2**53:
                    leg[key] = float(leg[key])
            else:
                leg[key] = draw(_VALUE)
    records = obj["records"]
    for key in ("timestamp", "underlyingValue", "index"):
        if draw(st.integers(0, 9)) == 0:
            records[key] = draw(_VALUE)
    if draw(st.integers(0, 19)) == 0:
        obj["records"]["data"] = draw(st.one_of(st.just([]), _JUNK))
    return json.dumps(obj).encode()


_REAL = {p.name: json.loads(p.read_bytes()) for p in TRIMMED.glob("nse_*.json")}

def _mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any],
            bad_percent: int = 15) -> st.SearchStrategy[Any]:
    """``good`` most of the time (``st.one_of`` would flatten and weigh every branch alike)."""
    return st.integers(0, 99).flatmap(lambda k: bad if k >= 100 - bad_percent else good)


_SPOT = 25000.0
_PRICE = _mostly(_NUMBER, _JUNK)
_LEG = st.fixed_dictionaries({}, optional={
    **{k: _PRICE for k in _LEG_KEYS if k != "underlyingValue"},
    "underlyingValue": _mostly(st.just(_SPOT), st.one_of(st.just(0), _VALUE), 20),
    "underlying": _mostly(st.sampled_from(["NIFTY", "nifty"]), st.sampled_from(["BANKNIFTY", ""])),
})
_ROW = st.fixed_dictionaries(
    {"strikePrice": _mostly(st.one_of(st.integers(1, 50000), st.floats(0.05, 50000)), _VALUE, 5),
     "expiryDate": _mostly(st.sampled_from(["17-Jul-2025", "24-Jul-2025", "31-JUL-2025"]),
                           st.sampled_from(["2025-07-31", "31-Jul-25", ""]), 5)},
    optional={"CE": _mostly(_LEG, _JUNK, 5), "PE": _mostly(_LEG, _JUNK, 5)})
_RECORDS = st.fixed_dictionaries(
    {"data": _mostly(st.lists(_ROW, min_size=1, max_size=8), st.one_of(st.just([]), _JUNK), 10),
     "timestamp": _mostly(st.sampled_from(["16-Jul-2025 15:30:00", "16-jul-2025 10:47"]),
                          _VALUE, 5)},
    optional={
        "underlyingValue": _mostly(st.sampled_from([_SPOT, str(_SPOT)]), _VALUE, 10),
        "index": st.one_of(st.just({"last": "25000.05", "pe": "22.68"}), _JUNK),
    })
_SYNTHETIC = _mostly(
    st.fixed_dictionaries({"records": _RECORDS}, optional={"filtered": _JUNK}),
    st.fixed_dictionaries({}, optional={"records": _JUNK, "filtered": _JUNK}), 5,
).map(lambda o: json.dumps(o).encode())


def _parse_or_reject(body: bytes, source: str) -> None:
    try:
        snap = parse_payload(body, source=source)
    except PayloadRejected as exc:
        assert exc.reason_code and exc.reason_code != "payload_rejected"
        return
    assert_valid(snap)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_mutated_real_payload(), source=st.sampled_from(["nse", "auto"]))
def test_hostile_mutations_of_real_payloads(body: bytes, source: str) -> None:
    _parse_or_reject(body, source)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_SYNTHETIC, source=st.sampled_from(["nse", "auto"]))
def test_hostile_synthetic_payloads(body: bytes, source: str) -> None:
    _parse_or_reject(body, source)


@st.composite
def _mutated_upstox_payload(draw: st.DrawFn) -> bytes:
    """The real trimmed Upstox payload with junk, zeros and missing pieces."""
    obj = _upstox_obj()
    for _ in range(draw(st.integers(0, 10))):
        row = obj["data"][draw(st.integers(0, len(obj["data"]) - 1))]
        where = draw(st.sampled_from(["row", "market_data", "option_greeks", "leg"]))
        side = draw(st.sampled_from(["call_options", "put_options"]))
        if where == "row":
            key = draw(st.sampled_from(["expiry", "strike_price", "underlying_key",
                                        "underlying_spot_price", side]))
            row[key] = draw(_VALUE)
        elif where == "leg":
            row[side] = draw(_JUNK)
        elif isinstance(row.get(side), dict) and isinstance(row[side].get(where), dict):
            key = draw(st.sampled_from(["ltp", "bid_price", "ask_price", "oi", "prev_oi",
                                        "volume", "iv"]))
            row[side][where][key] = draw(_VALUE)
    return json.dumps(obj).encode()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_mutated_upstox_payload())
def test_hostile_mutations_of_upstox_payload(body: bytes) -> None:
    try:
        snap = parse_payload(body, source="auto", asof=UPSTOX_ASOF)
    except PayloadRejected as exc:
        assert exc.reason_code != "payload_rejected"
        return
    assert_valid(snap)


@settings(max_examples=100, deadline=None)
@given(body=st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_reject(body: bytes) -> None:
    _parse_or_reject(body, "auto")


# --------------------------------------------------------------------------- providers


def test_replay_plays_every_file_then_stops() -> None:
    replay = ReplayProvider(TRIMMED)
    assert isinstance(replay, ChainProvider) and len(replay) == len(list(TRIMMED.glob("*.json")))
    now = datetime(2024, 6, 20, 15, 15, tzinfo=UTC)
    seen = []
    for path in sorted(TRIMMED.glob("*.json")):
        raw = replay.fetch("nifty", now)
        assert raw.body == path.read_bytes() and raw.source == path.name.split("_", 1)[0]
        snap = replay.parse(raw)
        assert_valid(snap)
        assert snap.source == f"replay:{raw.source}" and f"replay_file={path.name}" in snap.flags
        seen.append(snap.symbol)
    assert set(seen) == {"BANKNIFTY", "NIFTY", "RELIANCE"}
    assert replay.remaining == 0
    with pytest.raises(ReplayExhausted, match="exhausted"):
        replay.fetch("NIFTY", now)
    replay.reset()
    assert replay.remaining == len(replay)
    strict = ReplayProvider(TRIMMED, pattern="nse_oc_BANKNIFTY*.json", check_symbol=True)
    with pytest.raises(PayloadRejected) as exc:
        strict.parse(strict.fetch("NIFTY", now))
    assert exc.value.reason_code == "inconsistent_underlying"


def test_replay_needs_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ReplayProvider(tmp_path)
    with pytest.raises(FileNotFoundError):
        ReplayProvider(tmp_path / "absent")


def test_providers_satisfy_the_protocol_without_io() -> None:
    nse = NseProvider(base_url="http://127.0.0.1:9")
    upstox = UpstoxProvider("secret-token", base_url="http://127.0.0.1:9")
    assert isinstance(nse, ChainProvider) and isinstance(upstox, ChainProvider)
    assert "secret-token" not in repr(upstox)
    assert nse.api_url("NIFTY").endswith("/api/option-chain-indices")
    assert nse.api_url("reliance").endswith("/api/option-chain-equities")
    raw = RawPayload(source="upstox", symbol="NIFTY", fetched_at=UPSTOX_ASOF,
                     body=(TRIMMED / "upstox_docs_example_v2_option_chain_with_pop.json")
                     .read_bytes())
    assert upstox.parse(raw).asof == UPSTOX_ASOF
    nse.close()
    upstox.close()


def test_raw_payload_needs_aware_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        RawPayload(source="nse", symbol="NIFTY", body=b"{}", fetched_at=datetime(2025, 1, 1))


def test_rate_limiter_spaces_calls() -> None:
    clock = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += s

    limiter = RateLimiter(2.0, clock=lambda: clock[0], sleep=sleep)
    assert limiter.wait() == 0.0
    clock[0] += 0.5
    assert limiter.wait() == pytest.approx(1.5)
    clock[0] += 5.0
    assert limiter.wait() == 0.0
    assert slept == [pytest.approx(1.5)]


def test_full_payload_parse_is_fast() -> None:
    path = KIT / "nse_option_chain" / "nse_oc_NIFTY_2019-08-23_aadityatamrakar.json"
    path = _need(path if path.is_file() else None)
    body = path.read_bytes()
    parse_payload(body)
    timings = []
    for _ in range(7):
        t0 = time.perf_counter()
        snap = parse_payload(body)
        timings.append(time.perf_counter() - t0)
    assert snap.n_legs == 1807
    assert sorted(timings)[3] < 0.25  # ~10 ms here (7 ms of it json.loads); catch regressions
