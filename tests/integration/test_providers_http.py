"""NSE and Upstox fetchers against a local HTTP server that replays recorded payloads.

The server (``ThreadingHTTPServer`` on 127.0.0.1, ephemeral port) plays scripted replies:
cookie warm-up, 429, 5xx, stalls, HTML, 401. Nothing here touches the network. Backoff
sleeps are recorded instead of slept (injected ``sleep``), except where pacing is the test.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.adapters.providers import (
    HttpPolicy,
    NseProvider,
    PayloadRejected,
    ProviderUnavailable,
    RequestRejected,
    TokenExpired,
    UpstoxProvider,
)
from shared.errors import PermanentError, TransientError

pytestmark = pytest.mark.integration

CHAINS = Path(__file__).resolve().parents[1] / "fixtures" / "chains"
NSE_BODY = (CHAINS / "nse_oc_NIFTY_2025-07-16_ethanelliott50_trim.json").read_bytes()
EQUITY_BODY = (CHAINS / "nse_oc_equity_RELIANCE_2025-07-17_ethanelliott50_trim.json").read_bytes()
UPSTOX_BODY = (CHAINS / "upstox_oc_NIFTY_exp2024-06-20_spot23593.5_AlgoTrade_trim.json"
               ).read_bytes()
NOW = datetime(2025, 7, 16, 10, 0, tzinfo=UTC)
HOME = b"<!DOCTYPE html><html><head><title>NSE</title></head><body>home</body></html>"
TOKEN = "test-access-token-0123456789"
FAST = HttpPolicy(connect_timeout=2.0, read_timeout=2.0, max_attempts=4, backoff_initial=0.1,
                  backoff_max=1.0, jitter=0.0, min_interval=0.0)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to stall before answering


@dataclass
class Seen:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


Route = Callable[[Seen], Reply]


class Script:
    """Routes (path -> list of replies, played in order, the last one repeating)."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.release = threading.Event()  # cuts stalls short at teardown

    def sequence(self, path: str, *replies: Reply) -> None:
        queue = list(replies)

        def route(_: Seen) -> Reply:
            return queue.pop(0) if len(queue) > 1 else queue[0]

        self.routes[path] = route

    def paths(self) -> list[str]:
        return [s.path for s in self.seen]


class Server:
    def __init__(self) -> None:
        self.script = Script()
        script = self.script

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                parts = urlsplit(self.path)
                seen = Seen(parts.path, parse_qs(parts.query), dict(self.headers.items()))
                with script.lock:
                    script.seen.append(seen)
                    route = script.routes.get(parts.path)
                    reply = route(seen) if route else Reply(404, b'{"error": "no route"}')
                if reply.delay and script.release.wait(reply.delay):
                    return  # teardown: drop the connection
                self.send_response(reply.status)
                headers = {"Content-Type": "application/json", **reply.headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that timed out and hung up are expected here

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.script.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[Server]:
    with Server() as running:
        yield running


@pytest.fixture
def sleeps() -> list[float]:
    return []


def nse(server: Server, sleeps: list[float], policy: HttpPolicy = FAST, **kw: Any) -> NseProvider:
    return NseProvider(base_url=server.base_url, policy=policy, sleep=sleeps.append, **kw)


def upstox(server: Server, sleeps: list[float], policy: HttpPolicy = FAST,
           **kw: Any) -> UpstoxProvider:
    return UpstoxProvider(TOKEN, base_url=server.base_url, policy=policy, sleep=sleeps.append,
                          **kw)


def cookie_gate(body: bytes) -> Route:
    """NSE-like API: 401 unless the request carries the cookie the home page sets."""

    def route(seen: Seen) -> Reply:
        if "nsit=warm" in seen.headers.get("Cookie", ""):
            return Reply(200, body)
        return Reply(401, b'{"message": "unauthorized"}')

    return route


def home_sets_cookie(script: Script) -> None:
    script.sequence("/", Reply(200, HOME, {"Content-Type": "text/html",
                                          "Set-Cookie": "nsit=warm; Path=/; HttpOnly"}))


# --------------------------------------------------------------------------- NSE


def test_nse_warms_cookies_then_calls_the_api(server: Server, sleeps: list[float]) -> None:
    home_sets_cookie(server.script)
    server.script.routes["/api/option-chain-indices"] = cookie_gate(NSE_BODY)
    provider = nse(server, sleeps)
    raw = provider.fetch("nifty", NOW)
    assert server.script.paths() == ["/", "/api/option-chain-indices"]
    api = server.script.seen[1]
    assert api.query == {"symbol": ["NIFTY"]}
    assert "Mozilla/5.0" in api.headers["User-Agent"]
    assert api.headers["Referer"].endswith("/option-chain")
    assert "en-US" in api.headers["Accept-Language"]
    assert raw.body == NSE_BODY and raw.source == "nse" and raw.fetched_at == NOW
    assert raw.url is not None and raw.url.startswith(server.base_url)
    snap = provider.parse(raw)
    assert snap.symbol == "NIFTY" and snap.spot == 25212.05 and snap.n_legs > 0

    provider.fetch("NIFTY", NOW)  # cookies still fresh: no second warm-up
    assert server.script.paths()[2:] == ["/api/option-chain-indices"]
    assert sleeps == []
    provider.close()


def test_nse_equities_endpoint(server: Server, sleeps: list[float]) -> None:
    home_sets_cookie(server.script)
    server.script.routes["/api/option-chain-equities"] = cookie_gate(EQUITY_BODY)
    provider = nse(server, sleeps)
    snap = provider.parse(provider.fetch("RELIANCE", NOW))
    assert snap.symbol == "RELIANCE"
    assert server.script.seen[-1].query == {"symbol": ["RELIANCE"]}


def test_nse_rewarms_on_401_and_empty_object(server: Server, sleeps: list[float]) -> None:
    home_sets_cookie(server.script)
    server.script.sequence("/api/option-chain-indices", Reply(401, b"{}"), Reply(200, b"{}"),
                           Reply(200, NSE_BODY))
    provider = nse(server, sleeps)
    raw = provider.fetch("NIFTY", NOW)
    assert raw.body == NSE_BODY
    assert server.script.paths() == ["/", "/api/option-chain-indices"] * 3
    assert sleeps == [pytest.approx(0.1), pytest.approx(0.2)]  # exponential backoff


def test_nse_429_then_success(server: Server, sleeps: list[float]) -> None:
    home_sets_cookie(server.script)
    server.script.sequence("/api/option-chain-indices",
                           Reply(429, b'{"message": "slow down"}', {"Retry-After": "3"}),
                           Reply(200, NSE_BODY))
    raw = nse(server, sleeps).fetch("NIFTY", NOW)
    assert raw.body == NSE_BODY
    assert server.script.paths() == ["/", "/api/option-chain-indices",
                                     "/api/option-chain-indices"]
    assert sleeps == [pytest.approx(3.0)]  # Retry-After beats the 0.1 s backoff


def test_nse_503_until_retries_exhaust(server: Server, sleeps: list[float]) -> None:
    home_sets_cookie(server.script)
    server.script.sequence("/api/option-chain-indices", Reply(503, b"busy"))
    with pytest.raises(ProviderUnavailable) as exc:
        nse(server, sleeps).fetch("NIFTY", NOW)
    assert isinstance(exc.value, TransientError)
    assert exc.value.reason_code == "provider_unavailable"
    assert exc.value.attempts == 4 and exc.value.last_status == 503
    assert server.script.paths().count("/api/option-chain-indices") == 4
    assert sleeps == [pytest.approx(0.1), pytest.approx(0.2), pytest.approx(0.4)]


def test_backoff_has_jitter(server: Server, sleeps: list[float]) -> None:
    home_sets_cookie(server.script)
    server.script.sequence("/api/option-chain-indices", Reply(502, b"bad gateway"))
    policy = HttpPolicy(max_attempts=5, backoff_initial=0.1, backoff_max=0.25, jitter=0.05,
                        min_interval=0.0)
    with pytest.raises(ProviderUnavailable):
        nse(server, sleeps, policy).fetch("NIFTY", NOW)
    assert len(sleeps) == 4
    for base, slept in zip([0.1, 0.2, 0.4, 0.8], sleeps, strict=True):
        assert min(base, 0.25) <= slept <= min(base + 0.05, 0.25)  # 2^n backoff, capped
    assert sleeps[:2] != [0.1, 0.2]  # jittered


def test_nse_stall_times_out(server: Server, sleeps: list[float]) -> None:
    home_sets_cookie(server.script)
    server.script.sequence("/api/option-chain-indices", Reply(200, NSE_BODY, delay=5.0))
    policy = HttpPolicy(connect_timeout=1.0, read_timeout=0.3, max_attempts=2,
                        backoff_initial=0.01, jitter=0.0, min_interval=0.0)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable) as exc:
        nse(server, sleeps, policy).fetch("NIFTY", NOW)
    assert exc.value.reason_code == "provider_timeout"
    assert isinstance(exc.value, TransientError)
    assert time.monotonic() - started < 3.0


def test_nse_html_body_is_rejected_without_retry(server: Server, sleeps: list[float]) -> None:
    home_sets_cookie(server.script)
    server.script.sequence("/api/option-chain-indices", Reply(
        200, b"<!DOCTYPE html><html><body><h1>Access Denied</h1></body></html>",
        {"Content-Type": "text/html"}))
    with pytest.raises(PayloadRejected) as exc:
        nse(server, sleeps).fetch("NIFTY", NOW)
    assert exc.value.reason_code == "html_not_json"
    assert isinstance(exc.value, PermanentError)
    assert server.script.paths().count("/api/option-chain-indices") == 1


def test_nse_404_is_permanent(server: Server, sleeps: list[float]) -> None:
    home_sets_cookie(server.script)
    server.script.sequence("/api/option-chain-equities", Reply(404, b'{"error": "not found"}'))
    with pytest.raises(RequestRejected) as exc:
        nse(server, sleeps).fetch("NOSUCHSTOCK", NOW)
    assert exc.value.status == 404 and exc.value.reason_code == "http_404"
    assert sleeps == []


def test_nse_persistent_block_is_transient(server: Server, sleeps: list[float]) -> None:
    server.script.sequence("/", Reply(200, HOME, {"Content-Type": "text/html"}))  # no cookie
    server.script.routes["/api/option-chain-indices"] = cookie_gate(NSE_BODY)
    with pytest.raises(ProviderUnavailable) as exc:
        nse(server, sleeps).fetch("NIFTY", NOW)
    assert exc.value.reason_code == "provider_blocked" and exc.value.last_status == 401
    assert server.script.paths() == ["/", "/api/option-chain-indices"] * 4


def test_connection_refused_is_transient(sleeps: list[float]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens
    provider = NseProvider(base_url=f"http://127.0.0.1:{port}", policy=FAST, sleep=sleeps.append)
    with pytest.raises(ProviderUnavailable) as exc:
        provider.fetch("NIFTY", NOW)
    assert exc.value.reason_code == "provider_unavailable" and len(sleeps) == 3


def test_min_interval_paces_requests(server: Server) -> None:
    home_sets_cookie(server.script)
    server.script.routes["/api/option-chain-indices"] = cookie_gate(NSE_BODY)
    provider = NseProvider(base_url=server.base_url, policy=HttpPolicy(min_interval=0.15))
    started = time.monotonic()
    provider.fetch("NIFTY", NOW)  # warm-up + API: one pause
    provider.fetch("NIFTY", NOW)  # API: another
    assert time.monotonic() - started >= 0.3
    provider.close()


# --------------------------------------------------------------------------- Upstox


def test_upstox_fetch_with_bearer_token(server: Server, sleeps: list[float]) -> None:
    server.script.sequence("/v2/option/chain", Reply(200, UPSTOX_BODY))
    provider = upstox(server, sleeps)
    raw = provider.fetch("NIFTY", NOW, expiry=date(2024, 6, 20))
    seen = server.script.seen[0]
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["Accept"] == "application/json"
    assert seen.query == {"instrument_key": ["NSE_INDEX|Nifty 50"],
                          "expiry_date": ["2024-06-20"]}
    snap = provider.parse(raw)
    assert snap.asof == NOW and str(snap.asof.tzinfo) == "Asia/Kolkata"
    assert snap.symbol == "NIFTY" and snap.spot == 23593.5
    assert snap.expiries == (date(2024, 6, 20),)


def test_upstox_nearest_expiry_from_contracts(server: Server, sleeps: list[float]) -> None:
    contracts = {"status": "success", "data": [
        {"expiry": e, "instrument_key": f"NSE_FO|{i}", "strike_price": 23500,
         "underlying_key": "NSE_INDEX|Nifty 50", "instrument_type": "CE"}
        for i, e in enumerate(["2025-07-24", "2025-07-17", "2025-07-10", "2025-07-31"])]}
    server.script.sequence("/v2/option/contract", Reply(200, json.dumps(contracts).encode()))
    server.script.sequence("/v2/option/chain", Reply(200, UPSTOX_BODY))
    provider = upstox(server, sleeps)
    provider.fetch("NIFTY", NOW)  # NOW is 16 Jul 2025 (IST)
    assert server.script.paths() == ["/v2/option/contract", "/v2/option/chain"]
    assert server.script.seen[1].query["expiry_date"] == ["2025-07-17"]


def test_upstox_401_means_token_expired(server: Server, sleeps: list[float]) -> None:
    error = {"status": "error", "errors": [{"errorCode": "UDAPI100050",
                                            "message": "Invalid token used to access API"}]}
    server.script.sequence("/v2/option/chain", Reply(401, json.dumps(error).encode()))
    with pytest.raises(TokenExpired) as exc:
        upstox(server, sleeps).fetch("NIFTY", NOW, expiry=date(2024, 6, 20))
    assert exc.value.reason_code == "token_expired"
    assert isinstance(exc.value, PermanentError)
    assert "UDAPI100050" in str(exc.value) and TOKEN not in str(exc.value)
    assert len(server.script.seen) == 1 and sleeps == []  # no retry


def test_upstox_429_then_success(server: Server, sleeps: list[float]) -> None:
    server.script.sequence("/v2/option/chain", Reply(429, b'{"status": "error"}'),
                           Reply(500, b"oops"), Reply(200, UPSTOX_BODY))
    raw = upstox(server, sleeps).fetch("NIFTY", NOW, expiry=date(2024, 6, 20))
    assert raw.body == UPSTOX_BODY
    assert sleeps == [pytest.approx(0.1), pytest.approx(0.2)]


def test_upstox_400_is_permanent(server: Server, sleeps: list[float]) -> None:
    error = {"status": "error", "errors": [{"errorCode": "UDAPI100011",
                                            "message": "Invalid Instrument key"}]}
    server.script.sequence("/v2/option/chain", Reply(400, json.dumps(error).encode()))
    with pytest.raises(RequestRejected) as exc:
        upstox(server, sleeps).fetch("NSE_INDEX|Nope", NOW, expiry=date(2024, 6, 20))
    assert exc.value.status == 400 and "UDAPI100011" in str(exc.value)


def test_upstox_error_status_in_200_body(server: Server, sleeps: list[float]) -> None:
    error = {"status": "error", "errors": [{"errorCode": "UDAPI100500", "message": "Oops"}]}
    server.script.sequence("/v2/option/chain", Reply(200, json.dumps(error).encode()))
    provider = upstox(server, sleeps)
    raw = provider.fetch("NIFTY", NOW, expiry=date(2024, 6, 20))
    with pytest.raises(PayloadRejected) as exc:
        provider.parse(raw)
    assert exc.value.reason_code == "api_error"
