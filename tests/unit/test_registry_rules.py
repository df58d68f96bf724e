"""The registry's rules: contracts, the paired comparison and the life cycle."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from shared.domain.registry import (
    Bound,
    Candidate,
    ModelState,
    PairedScore,
    ValidationContract,
    can_move,
    judge,
)

SHA = hashlib.sha256(b"model").hexdigest()
CONTRACT = ValidationContract("vol_har", (Bound("oos_r2", "min", 0.2), Bound("qlike", "max", 1.0)),
                              primary="oos_r2", min_improvement=0.005)
SCHEMA = ("gk_vol_1d", "gk_vol_5d", "gk_vol_22d")


def candidate(**over) -> Candidate:
    base = dict(model_type="vol_har", metrics={"oos_r2": 0.45, "qlike": 0.3}, schema=SCHEMA,
                artifact_size=4_096, sha256=SHA, recorded_sha256=SHA)
    base.update(over)
    return Candidate(**base)


def test_a_good_first_candidate_is_promoted():
    j = judge(CONTRACT, candidate())
    assert j.promote and "no production version" in j.explain()


@pytest.mark.parametrize(("over", "needle"), [
    ({"metrics": {"oos_r2": 0.1, "qlike": 0.3}}, "oos_r2 0.1 not >= 0.2"),
    ({"metrics": {"oos_r2": 0.45}}, "qlike missing"),
    ({"metrics": {"oos_r2": float("nan"), "qlike": 0.3}}, "oos_r2 missing or not finite"),
    ({"artifact_size": 10}, "artifact size 10 B outside"),
    ({"sha256": hashlib.sha256(b"tampered").hexdigest()}, "does not match the recorded"),
    ({"model_type": "direction"}, "contract is for vol_har"),
])
def test_a_candidate_breaking_its_contract_is_rejected_with_the_reason(over, needle):
    j = judge(CONTRACT, candidate(**over))
    assert not j.promote and needle in j.explain()


def test_a_schema_change_is_rejected_while_production_runs_the_old_one():
    j = judge(CONTRACT, candidate(schema=(*SCHEMA, "vix")), production_schema=SCHEMA)
    assert not j.promote and "added ['vix']" in j.explain()
    reordered = judge(CONTRACT, candidate(schema=SCHEMA[::-1]), production_schema=SCHEMA)
    assert not reordered.promote and "reordered" in reordered.explain()


def test_the_paired_comparison_promotes_only_a_real_improvement():
    better = judge(CONTRACT, candidate(), production_schema=SCHEMA,
                   paired=PairedScore("oos_r2", candidate=0.47, production=0.44, rows=500))
    assert better.promote and better.numbers["gain"] == pytest.approx(0.03)
    worse = judge(CONTRACT, candidate(), production_schema=SCHEMA,
                  paired=PairedScore("oos_r2", candidate=0.43, production=0.44, rows=500))
    assert not worse.promote and "needs a gain >= 0.005" in worse.explain()
    tie = judge(CONTRACT, candidate(), production_schema=SCHEMA,
                paired=PairedScore("oos_r2", candidate=0.442, production=0.44, rows=500))
    assert not tie.promote


def test_lower_is_better_metrics_compare_the_other_way():
    qlike = replace(CONTRACT, primary="qlike", higher_is_better=False, min_improvement=0.0)
    j = judge(qlike, candidate(), production_schema=SCHEMA,
              paired=PairedScore("qlike", candidate=0.28, production=0.31, rows=200))
    assert j.promote and j.numbers["gain"] == pytest.approx(0.03)


def test_the_life_cycle():
    S = ModelState
    assert can_move(S.STAGED, S.SHADOW) and can_move(S.SHADOW, S.PRODUCTION)
    assert can_move(S.PRODUCTION, S.ARCHIVED) and can_move(S.ARCHIVED, S.PRODUCTION)
    assert not can_move(S.REJECTED, S.PRODUCTION) and not can_move(S.PRODUCTION, S.STAGED)
