"""Run inside a function's own venv, from its extracted bundle (not collected by pytest).

    <venv>/bin/python -I bundle_probe.py <bundle dir> <spec.json>

Prints one JSON object: the entry point, every module of the function's import graph
imported (first-party and third-party), what could not be imported, the packages that must
be absent, and the result of exercising the function's serving paths that sit next to
libraries it does not install (model loading, chart rendering, MLflow's store...).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import time
import traceback
from pathlib import Path


def exercise(function: str, artifacts: Path) -> dict:
    from datetime import UTC, date, datetime

    if function == "chain_poll":
        import math

        from shared.adapters.providers import parse_payload
        from shared.adapters.providers.simulator import MarketSimulator
        from shared.rules import default_calendar, risk_free_rate
        from shared.services.chain_poll import analyse_snapshot

        cal = default_calendar()
        sim = MarketSimulator("NIFTY", date(2025, 7, 16), seed=11, calendar=cal)
        done = analyse_snapshot(parse_payload(sim.payload_at(30)), cal, risk_free_rate)
        ivs = [e.atm_iv for e in done.analytics.expiries if math.isfinite(e.atm_iv)]
        return {"legs": done.snapshot.n_legs, "expiries_with_atm_iv": len(ivs)}

    if function == "news_ingest":
        from shared.domain.news.classify import classify
        from shared.domain.news.feeds import parse_feed

        rss = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
               b"<item><title>RBI hikes repo rate by 25 bps</title><link>https://example.com/a</link>"
               b"<pubDate>Fri, 20 Nov 2026 06:00:00 GMT</pubDate></item></channel></rss>")
        feed = parse_feed(rss, source="probe", now=datetime(2026, 11, 20, 7, tzinfo=UTC))
        label = classify(feed.items[0].title)
        return {"items": len(feed.items), "event_type": str(getattr(label, "event_type", label))}

    if function == "decide":
        import numpy as np

        from shared.domain.models.direction import DirectionPredictor
        from shared.domain.models.trainers import HarVolTrainer
        from shared.domain.models.wings import WingFit

        direction = DirectionPredictor.from_bytes((artifacts / "direction.bin").read_bytes())
        wing = WingFit.from_bytes((artifacts / "wing.bin").read_bytes())
        har = HarVolTrainer.load((artifacts / "har.json").read_bytes())
        expected = json.loads((artifacts / "expected.json").read_text())
        return {
            "direction": direction.predict_one(np.array(expected["direction_row"])),
            "wing": float(wing.predict(np.array([expected["wing_row"]]))[0]),
            "har": float(har.predict(np.array(expected["har_row"]))[0]),
        }

    if function == "risk_check":
        from shared.rules import default_calendar

        found = default_calendar().expiries("NIFTY", date(2026, 1, 1), date(2026, 3, 31))
        return {"expiries": len(found)}

    if function == "retrain":
        from shared.adapters.tracking import MlflowTracker

        root = artifacts / "mlflow"
        tracker = MlflowTracker(f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri())
        started = time.perf_counter()
        tracker.prepare()  # MLflow's SQL store: creates and migrates its schema (alembic)
        with tracker.run("probe", run_name="bundle-probe") as run:
            run.log_params({"rounds": 3})
            run.log_metrics({"oos_r2": 0.25})
            run.log_artifact_bytes("model.bin", b"weights")
            run_id = run.run_id
        return {"run_id": bool(run_id), "prepare_s": round(time.perf_counter() - started, 2)}

    if function == "notify":
        import boto3

        from shared.contracts import DecisionProposedV1
        from shared.domain.notify.render import payoff_png

        proposal = DecisionProposedV1.model_validate_json((artifacts / "proposal.json").read_text())
        png = payoff_png(proposal)
        ses = boto3.client("ses", region_name="ap-south-1", aws_access_key_id="probe",
                           aws_secret_access_key="probe")
        return {"png": png[:8] == b"\x89PNG\r\n\x1a\n", "ses": ses.meta.service_model.service_name}

    return {}


def main() -> None:
    bundle, spec_path = Path(sys.argv[1]), Path(sys.argv[2])
    spec = json.loads(spec_path.read_text())
    sys.path.insert(0, str(bundle))
    out: dict = {"failed_imports": {}, "present_but_not_allowed": []}

    started = time.perf_counter()
    import runpy

    namespace = runpy.run_path(str(bundle / "main.py"), run_name="main")
    out["main_import_s"] = time.perf_counter() - started
    out["entry_callable"] = callable(namespace.get(spec["entry_point"]))

    for name in spec["modules"]:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - reported, asserted by the test
            out["failed_imports"][name] = f"{type(exc).__name__}: {exc}"
    for name in spec["absent"]:
        if importlib.util.find_spec(name) is not None:
            out["present_but_not_allowed"].append(name)
    try:
        out["exercise"] = exercise(spec["function"], Path(spec["artifacts"]))
    except Exception:  # noqa: BLE001
        out["exercise_error"] = traceback.format_exc()
    loaded = {m.split(".")[0] for m in sys.modules}
    out["loaded_not_allowed"] = sorted(loaded & set(spec["absent"]))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
