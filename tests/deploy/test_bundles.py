"""The per-function bundles `make bundle` builds and terraform deploys: deterministic zips,
requirements pinned from the lock and limited to what each function's code imports, and
each bundle importing (and serving its model-loading paths) in a clean venv that holds
only its own requirements."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.bundle import FIXED_TIME, build_all, package_files
from deploy.requirements import (
    ALWAYS,
    NOT_RUN,
    RequirementsError,
    function_requirements,
    locked_pins,
)
from shared.topology import FUNCTIONS
from tests.deploy.deploy_support import ARTIFACTS, ROOT, record

SPECS = {f.name: f for f in FUNCTIONS}
UV = ROOT / ".venv" / "bin" / "uv"
PROBE = Path(__file__).with_name("bundle_probe.py")
# A cold process importing main.py (the shared runtime, the function's service module and
# what they import at module level; heavy libraries load lazily, per request).
IMPORT_BUDGET_S = 1.5
DEV_ONLY = {"pytest", "hypothesis", "moto", "ruff", "pgserver", "gcp-storage-emulator",
            "quantlib", "py-vollib", "python-hcl2", "aiosmtpd", "rich", "psutil", "checkov"}


def _requirement_names(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+) \\$", text, re.M))


# --- the zips --------------------------------------------------------------------------


def test_bundles_are_deterministic_and_hold_main_shared_and_requirements(bundles, tmp_path):
    again = {b.function: b for b in build_all(tmp_path)}
    assert {n: b.sha256 for n, b in bundles.items()} == {n: b.sha256 for n, b in again.items()}
    shared_files = {name for name, _ in package_files(ROOT)}
    for name, bundle in bundles.items():
        with zipfile.ZipFile(bundle.path) as zf:
            infos = zf.infolist()
            names = [i.filename for i in infos]
            assert names == sorted(names)
            assert {i.date_time for i in infos} == {FIXED_TIME}
            assert {i.external_attr >> 16 for i in infos} == {0o100644}
            assert zf.read("main.py") == (ROOT / SPECS[name].source / "main.py").read_bytes()
            assert set(names) == {"main.py", "requirements.txt"} | shared_files
            assert zf.read("requirements.txt").decode() == bundle.requirements.text()
        assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
        # package data travels with the code: migrations and the dated market rules
        assert any(re.fullmatch(r"shared/migrations/\d{4}_\w+\.sql", n) for n in names)
        assert "shared/data/lot_sizes.csv" in names and "shared/data/news_rules.yaml" in names
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert {n: m["sha256"] for n, m in manifest.items()} == {n: b.sha256 for n, b in bundles.items()}


def test_a_changed_file_changes_only_that_bundles_hash(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    for item in ("pyproject.toml", "requirements.lock", "shared"):
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, root / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, root / item)
    for spec in FUNCTIONS:
        shutil.copytree(ROOT / spec.source, root / spec.source,
                        ignore=shutil.ignore_patterns("__pycache__"))
    names = ["decide", "notify"]
    first = {b.function: b.sha256 for b in build_all(tmp_path / "a", names, root=root)}
    main = root / "functions" / "notify" / "main.py"
    main.write_text(main.read_text() + "\n# touched\n")
    second = {b.function: b.sha256 for b in build_all(tmp_path / "b", names, root=root)}
    assert [n for n in first if first[n] != second[n]] == ["notify"]


# --- requirements ---------------------------------------------------------------------------


def test_requirements_pin_the_lock_with_hashes_and_only_what_each_function_imports(bundles):
    pins = locked_pins()
    wanted = {
        "retrain": {"lightgbm", "xgboost-cpu", "statsmodels", "arch", "mlflow-skinny",
                    "sqlalchemy", "alembic", "scipy", "google-cloud-storage"},
        "notify": {"matplotlib", "boto3"},
        "decide": {"xgboost-cpu", "numpy", "google-cloud-storage"},
        "chain_poll": {"numpy", "orjson", "google-cloud-storage", "pandas-market-calendars"},
        "news_ingest": {"feedparser", "pyyaml"},
        "risk_check": {"numpy", "cloud-sql-python-connector"},
    }
    unwanted = {
        "retrain": set(),
        "notify": {"mlflow-skinny", "lightgbm", "xgboost-cpu", "statsmodels", "arch", "feedparser"},
        "decide": {"mlflow-skinny", "lightgbm", "statsmodels", "arch", "matplotlib", "boto3"},
        "chain_poll": {"mlflow-skinny", "lightgbm", "xgboost-cpu", "statsmodels", "arch",
                       "matplotlib", "boto3", "feedparser"},
        "news_ingest": {"mlflow-skinny", "lightgbm", "xgboost-cpu", "statsmodels", "arch",
                        "matplotlib", "boto3"},
        "risk_check": {"mlflow-skinny", "lightgbm", "xgboost-cpu", "statsmodels", "arch",
                       "matplotlib", "boto3", "feedparser", "google-cloud-storage"},
    }
    sizes = {}
    for name, bundle in bundles.items():
        text = bundle.requirements.text()
        reqs = _requirement_names(text)
        assert reqs, name
        for dist, version in reqs.items():
            assert pins[dist].version == version, (name, dist)
        blocks = re.split(r"\n(?=[a-z0-9])", text.split("\n", text.count("\n") - 1)[-1])
        assert all("--hash=sha256:" in b for b in blocks if "==" in b)
        assert set(ALWAYS) <= set(reqs)
        assert wanted[name] <= set(reqs), (name, wanted[name] - set(reqs))
        assert not (unwanted[name] | DEV_ONLY) & set(reqs), (name, (unwanted[name] | DEV_ONLY) & set(reqs))
        sizes[name] = len(reqs)
    record("pinned distributions per function", ", ".join(f"{n} {k}" for n, k in sizes.items()))


def test_a_stale_not_run_entry_is_refused(monkeypatch):
    monkeypatch.setitem(NOT_RUN, "risk_check", {**NOT_RUN["risk_check"], "feedparser": "x"})
    with pytest.raises(RequirementsError, match="feedparser"):
        function_requirements("risk_check", SPECS["risk_check"].source)


def test_an_unlocked_dependency_is_refused(tmp_path):
    lock = ROOT / "requirements.lock"
    text = re.sub(r"^pg8000==.*?(?=^\S)", "", lock.read_text(), flags=re.M | re.S)
    assert "pg8000==" not in text
    (tmp_path / "requirements.lock").write_text(text)
    locked_pins.cache_clear()
    try:
        with pytest.raises(RequirementsError, match="pg8000"):
            function_requirements("risk_check", SPECS["risk_check"].source,
                                  lock=tmp_path / "requirements.lock")
    finally:
        locked_pins.cache_clear()


# --- each bundle in its own clean venv ---------------------------------------------------------


def _uv(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "UV_SYSTEM_CERTS": "1"}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run([str(UV), *args], capture_output=True, text=True, env=env)


def _clean_env() -> dict[str, str]:
    """A minimal environment (and bytecode is written: PYTHONDONTWRITEBYTECODE is not kept)."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["MPLBACKEND"] = "Agg"
    env["MPLCONFIGDIR"] = env.get("TMPDIR", "/tmp")
    return env


@dataclass
class VenvRun:
    """One bundle in its own venv: what was installed, the cold import times of main.py,
    and the probe's report (tests/deploy/bundle_probe.py)."""

    installed: set[str]
    import_s: list[float]
    entry_ok: bool
    probe: dict
    artifacts: Path


def _prepare(name: str, bundle, base: Path, venv: Path) -> tuple[Path, Path]:
    src, artifacts = base / "src", base / "artifacts"
    shutil.rmtree(venv, ignore_errors=True)
    with zipfile.ZipFile(bundle.path) as zf:
        zf.extractall(src)
    started = time.perf_counter()
    made = _uv("venv", "--quiet", "--python", sys.executable, str(venv))
    assert made.returncode == 0, made.stderr
    py = str(venv / "bin" / "python")
    args = ["pip", "install", "--quiet", "--python", py, "--require-hashes", "-r",
            str(src / "requirements.txt")]
    installed = _uv(*args, "--offline")  # the lock's wheels are in uv's cache after make venv
    if installed.returncode != 0:
        installed = _uv(*args)
    assert installed.returncode == 0, f"{name}: {installed.stderr}"
    record(f"{name}: venv + install (uv, from its cache)", time.perf_counter() - started)
    artifacts.mkdir()
    if name in ARTIFACTS:
        ARTIFACTS[name](artifacts)
    reqs = bundle.requirements
    absent = sorted(NOT_RUN[name]) + (["mlflow"] if name != "retrain" else [])
    (base / "spec.json").write_text(json.dumps({
        "function": name, "entry_point": SPECS[name].entry_point, "artifacts": str(artifacts),
        "modules": [*reqs.graph.modules, *reqs.imports], "absent": absent}))
    return src, artifacts


def _cold_imports(name: str, src: Path, py: str, pycache: Path) -> tuple[list[float], bool]:
    """Fresh processes importing main.py as the runtime does; the first one also compiles
    what no earlier venv compiled (a deployed build compiles its dependencies at install)."""
    code = ("import runpy, sys, time; sys.path.insert(0, sys.argv[1]); t = time.perf_counter(); "
            "ns = runpy.run_path(sys.argv[1] + '/main.py', run_name='main'); "
            "print(time.perf_counter() - t, callable(ns.get(sys.argv[2])))")
    runs, ok = [], True
    for _ in range(4):
        out = subprocess.run([py, "-I", "-X", f"pycache_prefix={pycache}", "-c", code, str(src),
                              SPECS[name].entry_point],
                             capture_output=True, text=True, env=_clean_env(), cwd=src)
        assert out.returncode == 0, f"{name}: {out.stderr}"
        seconds, entry_ok = out.stdout.split()
        runs.append(float(seconds))
        ok = ok and entry_ok == "True"
    record(f"{name}: import main.py, first / best cold", f"{runs[0]:.2f} s / {min(runs[1:]):.2f} s")
    return runs, ok


# retrain first: its venv is the largest, and what it compiles the others reuse
ORDER = ["retrain", *(n for n in SPECS if n != "retrain")]


@pytest.fixture(scope="session")
def venv_runs(bundles, tmp_path_factory) -> dict[str, VenvRun]:
    """Each bundle installed in a venv of its own, one after the other, at the same path:
    the venv is deleted and recreated from nothing for each function, but the bytecode its
    dependencies compile on import goes to a shared ``-X pycache_prefix``, keyed by path,
    mtime and size, so the same pinned file (uv links it from its cache) is compiled once, not six
    times. A distribution a venv does not install has no source there: nothing of it imports."""
    if not UV.exists():
        pytest.fail(f"{UV} is missing: run `make venv` (make test creates it)")
    slot = tmp_path_factory.mktemp("venv-slot")
    venv, pycache = slot / "venv", slot / "pycache"
    py = str(venv / "bin" / "python")
    runs: dict[str, VenvRun] = {}
    for name in ORDER:
        src, artifacts = _prepare(name, bundles[name], tmp_path_factory.mktemp(name), venv)
        frozen = _uv("pip", "freeze", "--python", py)
        installed = {re.split(r"==| @ ", line)[0].lower().replace("_", "-")
                     for line in frozen.stdout.splitlines() if line.strip()}
        import_s, ok = _cold_imports(name, src, py, pycache)
        started = time.perf_counter()
        out = subprocess.run([py, "-I", "-X", f"pycache_prefix={pycache}", str(PROBE), str(src),
                              str(src.parent / "spec.json")],
                             capture_output=True, text=True, env=_clean_env(), cwd=src)
        record(f"{name}: probe (import whole graph + exercise)", time.perf_counter() - started)
        probe = ({"probe_failed": out.stderr[-4000:]} if out.returncode != 0
                 else json.loads(out.stdout.strip().splitlines()[-1]))
        runs[name] = VenvRun(installed, import_s, ok, probe, artifacts)
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SPECS))
def test_bundle_imports_and_serves_in_a_venv_with_only_its_requirements(name, bundles, venv_runs):
    run = venv_runs[name]
    # only its own requirements: the venv holds exactly the pinned distributions
    assert run.installed == set(bundles[name].requirements.distributions)
    assert run.entry_ok
    assert min(run.import_s[1:]) < IMPORT_BUDGET_S, f"{name} imports in {min(run.import_s[1:]):.2f} s"
    result = run.probe
    assert "probe_failed" not in result, result.get("probe_failed")
    assert result["entry_callable"]
    assert result["failed_imports"] == {}
    assert result["present_but_not_allowed"] == []
    assert result["loaded_not_allowed"] == []
    assert "exercise_error" not in result, result.get("exercise_error")
    _assert_exercise(name, result["exercise"], run.artifacts)


def _assert_exercise(name: str, got: dict, artifacts: Path) -> None:
    if name == "chain_poll":
        assert got["legs"] > 100 and got["expiries_with_atm_iv"] >= 1
    elif name == "news_ingest":
        assert got == {"items": 1, "event_type": got["event_type"]} and got["event_type"]
    elif name == "decide":  # loaded without lightgbm/statsmodels, predicting as fitted
        expected = json.loads((artifacts / "expected.json").read_text())
        assert got["direction"] == expected["direction"]
        assert got["wing"] == pytest.approx(expected["wing"], rel=1e-6)
        assert got["har"] == pytest.approx(expected["har"], rel=1e-12)
    elif name == "risk_check":
        assert got["expiries"] >= 12
    elif name == "retrain":
        assert got["run_id"] is True
        record("retrain: MLflow store prepare (sqlite, alembic)", got["prepare_s"])
    elif name == "notify":
        assert got == {"png": True, "ses": "ses"}
