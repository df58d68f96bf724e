"""Cold-start discipline: what the deployed functions install and import."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from shared.topology import FUNCTIONS

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("statsmodels", "arch", "lightgbm", "xgboost", "mlflow", "sklearn", "pandas", "scipy",
         "matplotlib", "google.cloud.pubsub_v1", "google.cloud.storage", "google.cloud.sql")


def locked() -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;\\]+)", (ROOT / "requirements.lock").read_text(), re.M)
    return {name.lower(): version for name, version in pins}


def test_lock_pins_the_cold_start_choices():
    pins = locked()
    assert "xgboost-cpu" in pins and "xgboost" not in pins  # not the 700 MiB wheel
    assert "mlflow-skinny" in pins and "mlflow" not in pins
    assert "scikit-learn" not in pins  # lightgbm imports 3x faster without it
    for required in ("functions-framework", "google-cloud-pubsub", "google-cloud-storage",
                     "cloud-sql-python-connector", "pg8000", "lightgbm", "statsmodels", "arch",
                     "numpy", "pandas", "pydantic", "pytest", "moto", "pgserver"):
        assert required in pins, required


def test_lock_has_hashes_for_every_pin():
    text = (ROOT / "requirements.lock").read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
    pinned = [b for b in blocks if "==" in b.split("\n", 1)[0]]
    assert pinned and all("--hash=sha256:" in b for b in pinned)


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda s: s.name)
def test_entry_modules_import_nothing_heavy(spec):
    code = (
        "import json, runpy, sys; runpy.run_path(sys.argv[1]); "
        "print(json.dumps(sorted(m for m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / spec.source / "main.py")],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    modules = set(json.loads(out.stdout))
    loaded = sorted(h for h in HEAVY if h in modules)
    assert loaded == [], f"{spec.name} imports {loaded} at module load"
