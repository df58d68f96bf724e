"""Choose chain_poll's provider from the settings (``QS_CHAIN_SOURCE``).

``simulator`` (the local default), ``nse``, ``upstox`` or ``replay:<directory>``. Providers
are built once per function instance and reused while it is warm (sessions, cookies, the
simulated path of the day).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from shared.adapters.providers.base import ChainProvider
from shared.config import Settings
from shared.domain.calendar import MarketCalendar
from shared.errors import PermanentError

IST = ZoneInfo("Asia/Kolkata")


def provider_factory(settings: Settings, calendar: MarketCalendar
                     ) -> Callable[[str, datetime], ChainProvider]:
    """A function ``(symbol, market_time) -> provider`` for the configured source."""
    source = settings.chain_source
    lock = threading.Lock()
    cache: dict[object, ChainProvider] = {}

    def cached(key: object, build: Callable[[], ChainProvider]) -> ChainProvider:
        with lock:
            if key not in cache:
                cache[key] = build()
            return cache[key]

    if source == "nse":
        from shared.adapters.providers.nse import NseProvider

        # one session (cookies, rate limiter) per symbol: concurrent NIFTY and BANKNIFTY
        # requests on one warm instance never share a requests.Session
        return lambda symbol, when: cached(
            ("nse", symbol), lambda: NseProvider(base_url=settings.nse_base_url))
    if source == "upstox":
        from shared.adapters.providers.upstox import UpstoxProvider

        if settings.upstox_access_token is None:
            raise PermanentError("QS_CHAIN_SOURCE=upstox needs QS_UPSTOX_ACCESS_TOKEN",
                                 reason_code="misconfigured")
        token = settings.upstox_access_token.get_secret_value()
        return lambda symbol, when: cached(
            ("upstox", symbol), lambda: UpstoxProvider(token, base_url=settings.upstox_base_url))
    if source.startswith("replay:"):
        from shared.adapters.providers.replay import ReplayProvider

        directory = Path(source.removeprefix("replay:"))
        return lambda symbol, when: cached(("replay", symbol), lambda: ReplayProvider(directory))
    if source == "simulator":
        from shared.adapters.providers.simulator import MarketSimulator, SimulatorProvider

        def simulated(symbol: str, when: datetime) -> ChainProvider:
            day: date = when.astimezone(IST).date()
            return cached(("sim", symbol, day), lambda: SimulatorProvider(MarketSimulator(
                symbol, day, seed=settings.simulator_seed, calendar=calendar)))

        return simulated
    raise PermanentError(
        f"unknown QS_CHAIN_SOURCE {source!r}: use simulator, nse, upstox or replay:<directory>",
        reason_code="misconfigured")
