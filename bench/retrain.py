"""Retrain benchmarks (``python -m bench.retrain``).

* **Full retrain of the global models**: every trainer of the nightly catalogue
  (:func:`shared.services.retrain.default_trainers`: log-HAR at 1, 5 and 22 days with
  walk-forward GARCH/GJR alongside, the LightGBM direction model and the event-impact model,
  each with its walk-forward evaluation) on NIFTY's daily history 2000-2019 (19.9 years), plus the realized variance of
  the intraday history (BANKNIFTY 1-minute bars, 40 sessions, and NIFTY 1-minute bars, 5
  sessions) and the causality audit each trainer runs. Target: <= 60 s on 2 cores.
* **Cold load of a production model**: a fresh interpreter imports the serving code (not
  mlflow, not lightgbm, not the GCS client library), reads the production pointer from
  Postgres, downloads the artifact from the GCS emulator (JSON API, standard library),
  verifies its SHA-256 and rebuilds the direction model's trees. Target: <= 300 ms,
  measured inside the process from before the imports to the model in hand; the load
  alone (after the imports a serving function has anyway) is reported beside it. The code
  runs byte-compiled, as in a deployed image: the dependencies are installed with
  ``--compile-bytecode`` (see the Makefile) and ``shared/`` is compiled before timing.
  Without the bytecode (``PYTHONDONTWRITEBYTECODE`` and nothing compiled) every cold
  process compiles numpy and pg8000 from source: about 340 ms of imports instead of 125.
* **One direction prediction**: :meth:`DirectionFit.predict_one` (flat-array trees) against
  the native ``Booster.predict`` on a one-row numpy array (``num_threads=1``). Target:
  <= 50 us. (The sklearn wrapper, about 330 us, is not installed: we do not use it.)

The fixture kit (``../shared/fixtures/index_history``) must be beside the checkout.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KIT = ROOT.parent / "shared" / "fixtures" / "index_history"
DAILY = KIT / "nifty50_daily_2000-2019_yahoo_VatsalSin.csv"
INTRADAY = (("BANKNIFTY", KIT / "banknifty_1min_2023-04_to_06_kite_Dispersion.csv"),
            ("NIFTY", KIT / "nifty50_1min_2025-09-04_to_10_yfinance_AUTO_TRADING_TRACKER.csv"))

TARGET_RETRAIN_S = 60.0
TARGET_LOAD_S = 0.300
TARGET_PREDICT_S = 50e-6

COLD_LOAD = """
import os, time
t0 = time.perf_counter()
from shared.adapters.blobs import UrlBlobReader
from shared.adapters.db import Database, DirectConnector, parse_database_url
from shared.adapters.registry import ModelRegistry, ProductionModels
from shared.domain.models.direction import DirectionPredictor
t1 = time.perf_counter()
db = Database(DirectConnector(parse_database_url({url!r})))
reader = UrlBlobReader(emulator_host=os.environ["STORAGE_EMULATOR_HOST"])
registry = ModelRegistry(db, reader, {bucket!r})
version, model = ProductionModels(registry, DirectionPredictor.from_bytes).get({model!r})
t2 = time.perf_counter()
import sys
for heavy in ("mlflow", "lightgbm", "google.cloud.storage"):
    assert heavy not in sys.modules, f"serving imported {{heavy}}"
print(t2 - t0, t2 - t1, version)
"""


def _stats(samples: list[float], **extra: float) -> dict[str, float]:
    return {"median_s": statistics.median(samples), "min_s": min(samples),
            "max_s": max(samples), **extra}


def full_retrain(runs: int) -> tuple[dict[str, float], dict[str, object]]:
    """Seconds to train every global model once (and the trained models of the last run)."""
    import numpy as np

    from shared.domain.models.vol import realized_variance_from_bars
    from shared.marketdata import HistoryFormat, read_history
    from shared.services.retrain import default_trainers

    samples, trained = [], {}
    for _ in range(runs):
        t0 = time.perf_counter()
        bars = read_history(DAILY, HistoryFormat.YAHOO_PANDAS, symbol="NIFTY")
        for symbol, path in INTRADAY:
            intraday = read_history(path, symbol=symbol)
            rv = realized_variance_from_bars(intraday.session, intraday.close)
            assert np.all(np.isfinite(rv.rv))
        trained = {name: trainer.train(bars) for name, trainer in default_trainers().items()}
        samples.append(time.perf_counter() - t0)
    return _stats(samples, models=float(len(trained)), daily_rows=float(len(bars)),
                  target_s=TARGET_RETRAIN_S,
                  meets_target=float(statistics.median(samples) <= TARGET_RETRAIN_S)), trained


def cold_load(runs: int, artifact: bytes) -> dict[str, float]:
    """Stage and promote ``artifact`` in a throwaway Postgres and GCS emulator, then time
    fresh interpreters loading it as serving does."""
    import compileall
    import logging
    import os
    from datetime import UTC, date, datetime

    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from local.gcs import GcsEmulator
    from local.postgres import start_database
    from shared.adapters.blobs import GcsBlobStore
    from shared.adapters.db import Database, DirectConnector
    from shared.adapters.registry import Lineage, ModelRegistry

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    compileall.compile_dir(ROOT / "shared", quiet=1)  # what a deploy build does
    with tempfile.TemporaryDirectory() as tmp:
        database, server = start_database(Path(tmp) / "pg", fresh=True)
        emulator = GcsEmulator(Path(tmp) / "gcs.log")
        emulator.start()
        os.environ["STORAGE_EMULATOR_HOST"] = emulator.host
        try:
            storage.Client(project="qs-bench",
                           credentials=AnonymousCredentials()).create_bucket("qs-bench-models")
            db = Database(DirectConnector(database.app))
            registry = ModelRegistry(db, GcsBlobStore("qs-bench", emulator=True),
                                     "qs-bench-models")
            staged = registry.stage("direction_lgbm_5d", None, artifact, ("f",), {"brier": 0.2},
                                    Lineage("bench", "bench", date(2019, 12, 2), "bench"))
            registry.promote("direction_lgbm_5d", None, staged.version, judgement="bench",
                             paired=None, now=datetime.now(UTC))
            db.close()
            url = database.app_url
            code = COLD_LOAD.format(url=url, bucket="qs-bench-models", model="direction_lgbm_5d")
            samples, loads = [], []
            for _ in range(runs):
                out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                                     text=True, check=True, cwd=ROOT,
                                     env={**os.environ, "STORAGE_EMULATOR_HOST": emulator.host})
                elapsed, load, version = out.stdout.split()
                assert int(version) == staged.version
                samples.append(float(elapsed))
                loads.append(float(load))
        finally:
            emulator.stop()
            if server is not None:
                server.stop()
    return _stats(samples, load_after_imports_s=statistics.median(loads),
                  artifact_bytes=float(len(artifact)), target_s=TARGET_LOAD_S,
                  meets_target=float(statistics.median(samples) <= TARGET_LOAD_S))


def predict(artifact: bytes, runs: int) -> dict[str, dict[str, float]]:
    import numpy as np

    from shared.domain.models.direction import DirectionFit

    fit = DirectionFit.from_bytes(artifact)
    rng = np.random.default_rng(1234)
    n_features = len(fit.feature_names)
    rows = rng.normal(0.0, 0.01, (2_000, n_features))
    results = {}
    for label, call in (("fast path (predict_one)", fit.predict_one),
                        ("native Booster.predict, 1 row", fit.predict_one_native)):
        for x in rows[:200]:  # warm-up
            call(x)
        per_call = []
        for _ in range(runs):
            t0 = time.perf_counter()
            for x in rows:
                call(x)
            per_call.append((time.perf_counter() - t0) / len(rows))
        results[f"retrain: direction prediction, {label}"] = _stats(
            per_call, target_s=TARGET_PREDICT_S,
            meets_target=float(statistics.median(per_call) <= TARGET_PREDICT_S))
    return results


def run(runs: int = 3) -> dict[str, dict[str, float]]:
    if not DAILY.exists():
        print(f"skipping retrain benchmarks: {DAILY} is missing", file=sys.stderr)
        return {}
    retrain, trained = full_retrain(max(1, min(runs, 3)))
    artifact = trained["direction_lgbm_5d"].artifact
    results = {f"retrain: all global models ({len(trained)}), 20 y daily + intraday": retrain}
    results["retrain: cold load of the production direction model"] = cold_load(runs, artifact)
    results.update(predict(artifact, runs))
    return results


if __name__ == "__main__":
    from bench.report import table

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    out = run(n)
    if "--json" in sys.argv:
        print(json.dumps(out, indent=2))
    else:
        print(table(out, n))
