"""`qs costs quote`: the domain-facts worked example through the command line."""

import json

from shared.cli import main


def run(capsys, *args: str) -> dict:
    assert main(["costs", "quote", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_worked_example_round_trip_matches_domain_facts(capsys):
    # buy 1 lot of a stock option at 25, sell at 35, lot 500, 2025 rates, no brokerage
    buy = run(capsys, "--date", "2025-06-10", "--instrument", "option", "--side", "buy",
              "--price", "25", "--qty", "500", "--plan", "zero")
    sell = run(capsys, "--date", "2025-06-10", "--instrument", "option", "--side", "sell",
               "--price", "35", "--qty", "500", "--plan", "zero")
    assert set(buy) == {"stt", "exchange", "sebi", "ipft", "stamp", "gst", "brokerage", "total"}
    assert buy["stamp"] == 0.38 and sell["stamp"] == 0.0  # buy side only
    assert buy["stt"] == 0.0 and sell["stt"] == 17.5  # sell side only, 0.1 % of 17,500
    # per-fill amounts are rounded to the paisa, so the pair may differ from the
    # round-trip figure (30.49) by a paisa or two
    assert abs(buy["total"] + sell["total"] - 30.49) <= 0.02


def test_exercise_and_rate_regimes(capsys):
    after = run(capsys, "--date", "2026-05-05", "--instrument", "option", "--side", "sell",
                "--price", "0", "--qty", "65", "--exercise", "--intrinsic", "40")
    assert after["stt"] == 3.9  # 0.15 % of 40 x 65 from 2026-04-01
    before = run(capsys, "--date", "2025-05-05", "--instrument", "option", "--side", "sell",
                 "--price", "0", "--qty", "65", "--exercise", "--intrinsic", "40")
    assert before["stt"] == 3.25  # 0.125 % until 2026-03-31


def test_errors_are_clear(capsys):
    assert main(["costs", "quote", "--date", "2019-01-01", "--instrument", "option", "--side",
                 "buy", "--price", "5", "--qty", "75"]) == 2
    assert "covers 2021-01-01" in capsys.readouterr().err
    assert main(["costs", "quote", "--date", "2025-01-01", "--instrument", "option", "--side",
                 "sell", "--price", "5", "--qty", "75", "--exercise"]) == 2
    assert "--intrinsic" in capsys.readouterr().err
