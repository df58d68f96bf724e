"""Fetching news feeds over HTTP: an allowlist of hosts, conditional GET, a size cap, and
the providers' timeouts and tenacity backoff (:class:`shared.adapters.providers.base.HttpFetcher`).

Safety: a feed URL must be ``http(s)`` on a host of the allowlist (the packaged
``shared/data/news_feeds.yaml`` hosts plus ``QS_NEWS_ALLOWED_HOSTS``), checked before any
request and again on every redirect hop (redirects are followed by hand, at most 3). A
host that resolves to a private, loopback or link-local address is refused unless that
address itself is allowlisted (a local test server), so a configured or redirected URL
is refused. The check resolves the name itself and the connection resolves it again: a
name whose record changes in between (DNS rebinding) is not covered here; egress rules
(no route from the functions to internal ranges) are the backstop. Bodies are streamed and
cut at ``max_bytes``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from shared.adapters.providers.base import HttpFetcher, HttpPolicy, RetryableFetch
from shared.errors import PermanentError, TransientError

__all__ = ["FeedConfig", "FeedFetcher", "FeedRefused", "FetchResult"]

MAX_REDIRECTS = 3


class FeedRefused(PermanentError):
    """The URL may not be fetched (scheme, host not allowlisted, internal address)."""

    reason_code = "feed_refused"


@dataclass(frozen=True, slots=True)
class FeedConfig:
    name: str
    url: str


@dataclass(frozen=True, slots=True)
class FetchResult:
    """``status``: ``ok`` (``body``), ``not_modified`` (304) or ``error`` (``error_code``)."""

    feed: FeedConfig
    status: str
    body: bytes = b""
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    error_code: str | None = None
    error: str | None = None


_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: internal too


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved \
        or ip.is_multicast or ip.is_unspecified or (ip.version == 4 and ip in _SHARED)


class FeedFetcher:
    """Fetches feeds (see the module docstring)."""

    def __init__(self, allowed_hosts: Iterable[str], *, max_bytes: int = 5_000_000,
                 policy: HttpPolicy | None = None, resolve: Any = socket.getaddrinfo) -> None:
        self._allowed = {h.lower().strip() for h in allowed_hosts if h.strip()}
        self._max_bytes = max_bytes
        self._policy = policy or HttpPolicy(connect_timeout=5.0, read_timeout=10.0,
                                            max_attempts=3, backoff_initial=0.5,
                                            backoff_max=4.0, jitter=0.25, min_interval=0.0)
        self._resolve = resolve

    def check(self, url: str) -> None:
        """Raise :class:`FeedRefused` unless ``url`` may be fetched."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host:
            raise FeedRefused(f"not an http(s) URL: {url!r}")
        if host not in self._allowed:
            raise FeedRefused(f"host {host!r} is not on the feed allowlist")
        try:
            addresses = {a[4][0] for a in self._resolve(host, parts.port or 443)}
        except OSError as exc:
            raise FeedRefused(f"host {host!r} does not resolve: {exc}") from None
        internal = sorted(a for a in addresses if _private(a) and a not in self._allowed)
        if internal:
            raise FeedRefused(f"host {host!r} resolves to internal address(es) {internal}")

    def fetch(self, feed: FeedConfig, *, etag: str | None = None,
              last_modified: str | None = None) -> FetchResult:
        """One feed, conditionally; failures are returned as ``error`` results, never raised."""
        try:
            return self._fetch(feed, etag, last_modified)
        except (PermanentError, TransientError) as exc:
            return FetchResult(feed, "error", error_code=exc.reason_code, error=exc.reason)
        except Exception as exc:  # noqa: BLE001 - one feed's failure never ends the run
            return FetchResult(feed, "error", error_code="fetch_failed",
                               error=f"{type(exc).__name__}: {exc}")

    def _fetch(self, feed: FeedConfig, etag: str | None,
               last_modified: str | None) -> FetchResult:
        import requests

        http = HttpFetcher(f"feed {feed.name}", policy=self._policy,
                           headers={"User-Agent": "quantsentinel-news/1.0",
                                    "Accept": "application/rss+xml, application/atom+xml, "
                                              "application/xml;q=0.9, */*;q=0.5"})
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified

        def attempt() -> FetchResult:
            url = feed.url
            for _ in range(MAX_REDIRECTS + 1):
                self.check(url)
                resp = http.get(url, headers=headers, stream=True, allow_redirects=False)
                try:
                    if resp.is_redirect and resp.headers.get("Location"):
                        url = urljoin(url, resp.headers["Location"])
                        continue
                    http.raise_if_retryable(resp)
                    if resp.status_code == 304:
                        return FetchResult(feed, "not_modified", etag=etag,
                                           last_modified=last_modified)
                    if resp.status_code != 200:
                        return FetchResult(feed, "error", error_code="http_error",
                                           error=f"HTTP {resp.status_code} from {url}")
                    try:
                        body = self._read_capped(resp)
                    except (requests.RequestException, OSError) as exc:  # mid-body failure
                        raise RetryableFetch(f"{feed.name}: reading the body failed: "
                                             f"{type(exc).__name__}", kind="connection") from exc
                    if body is None:
                        return FetchResult(feed, "error", error_code="too_large",
                                           error=f"body larger than {self._max_bytes} bytes")
                    return FetchResult(feed, "ok", body=body,
                                       content_type=resp.headers.get("Content-Type"),
                                       etag=resp.headers.get("ETag"),
                                       last_modified=resp.headers.get("Last-Modified"))
                finally:
                    resp.close()
            return FetchResult(feed, "error", error_code="too_many_redirects",
                               error=f"more than {MAX_REDIRECTS} redirects from {feed.url}")

        try:
            return http.run(attempt, what=f"feed {feed.name}")
        except RetryableFetch as exc:  # pragma: no cover - run() converts these
            return FetchResult(feed, "error", error_code=exc.kind, error=str(exc))
        finally:
            http.close()

    def _read_capped(self, resp: Any) -> bytes | None:
        declared = resp.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self._max_bytes:
            return None
        chunks, size = [], 0
        for chunk in resp.iter_content(chunk_size=65536):
            size += len(chunk)
            if size > self._max_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)
