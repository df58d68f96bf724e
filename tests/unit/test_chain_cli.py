"""`qs chain analyze` on the project's trimmed copies of real payloads (and the kit's full
ones when present): the JSON contract of the command, and identities on its numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from shared.cli import main

ROOT = Path(__file__).resolve().parents[2]
TRIMMED = sorted((ROOT / "tests" / "fixtures" / "chains").glob("nse_*.json"))
KIT = ROOT.parent / "shared" / "fixtures" / "nse_option_chain"
FULL = sorted(KIT.glob("*.json")) if KIT.is_dir() else []
LEG_KEYS = {"strike", "type", "price", "iv", "delta", "gamma", "vega", "theta", "oi"}
EXPIRY_KEYS = {"expiry", "forward", "atm_iv", "max_pain", "pcr_oi", "gex_total", "gamma_flip",
               "density", "legs"}


def analyze(path: Path, capsys, *extra: str) -> dict:
    assert main(["chain", "analyze", str(path), "--compact", *extra]) == 0
    return json.loads(capsys.readouterr().out)  # Python's json reads the NaN literals


def check(out: dict) -> None:
    assert {"symbol", "asof", "spot", "expiries"} <= out.keys()
    assert out["asof"].endswith("+05:30")
    assert out["expiries"], "no expiry analysed"
    for e in out["expiries"]:
        assert e.keys() >= EXPIRY_KEYS
        assert e["forward"] > 0
        for leg in e["legs"]:
            assert leg.keys() >= LEG_KEYS
            assert leg["type"] in ("CE", "PE")
            if math.isnan(leg["iv"]):
                assert leg["iv_reason"]  # NaN only with a reason
            else:
                assert 0 < leg["iv"] < 10
                assert leg["gamma"] > 0 and leg["vega"] > 0
                if leg["type"] == "CE":
                    assert 0 < leg["delta"] <= 1
                else:
                    assert -1 <= leg["delta"] < 0
        if e["density"] is not None:
            assert e["density"]["variance"] > 0
            assert 0 <= e["density"]["crash_probability"] <= 1


@pytest.mark.parametrize("path", TRIMMED, ids=lambda p: p.name)
def test_trimmed_real_payloads(path, capsys):
    check(analyze(path, capsys))


@pytest.mark.skipif(not FULL, reason="../shared/fixtures is absent")
@pytest.mark.parametrize("path", FULL, ids=lambda p: p.name)
def test_full_real_payloads(path, capsys):
    out = analyze(path, capsys)
    check(out)
    near = out["expiries"][0]
    # the parity forward of the nearest expiry sits within 1 % of spot
    assert abs(near["forward"] / out["spot"] - 1) < 0.01


def test_upstox_needs_a_time_and_then_converts_units_to_contracts(capsys):
    path = ROOT / "tests/fixtures/chains/upstox_oc_NIFTY_exp2024-06-20_spot23593.5_AlgoTrade_trim.json"
    assert main(["chain", "analyze", str(path)]) == 2
    assert "--asof" in capsys.readouterr().err
    out = analyze(path, capsys, "--asof", "2024-06-20T11:00+05:30")
    check(out)
    assert "oi_converted_from_units" in out["flags"]
    raw = json.loads(path.read_text())["data"]
    units = raw[0]["call_options"]["market_data"]["oi"]
    leg = next(x for x in out["expiries"][0]["legs"]
               if x["strike"] == raw[0]["strike_price"] and x["type"] == "CE")
    assert leg["oi"] == pytest.approx(units / 25)  # NIFTY lot for June 2024 expiries: 25


def test_put_and_call_ivs_agree_near_the_money(capsys):
    """With the forward from parity, CE and PE at one strike imply nearly the same vol."""
    out = analyze(ROOT / "tests/fixtures/chains/nse_oc_NIFTY_2025-07-16_ethanelliott50_trim.json", capsys)
    e = out["expiries"][0]
    by = {}
    for leg in e["legs"]:
        by.setdefault(leg["strike"], {})[leg["type"]] = leg["iv"]
    pairs = [(v["CE"], v["PE"]) for k, v in by.items()
             if abs(k / e["forward"] - 1) < 0.01 and "CE" in v and "PE" in v
             and not math.isnan(v["CE"]) and not math.isnan(v["PE"])]
    assert len(pairs) >= 3
    assert max(abs(c - p) for c, p in pairs) < 0.02


def test_bad_files_are_clear_errors_not_tracebacks(tmp_path, capsys):
    html = tmp_path / "blocked.json"
    html.write_text("<html><body>Access Denied</body></html>")
    assert main(["chain", "analyze", str(html)]) == 2
    assert "html_not_json" in capsys.readouterr().err
    assert main(["chain", "analyze", str(tmp_path / "missing.json")]) == 2
    assert "No such file" in capsys.readouterr().err
