"""terraform/ declares exactly the deployment the code expects (deploy/consistency.py):
functions and their sizing, topics, push subscriptions, the retry and dead-letter policy,
secrets and their bindings, and the Cloud Scheduler jobs of schedules/*.yaml. Each check
is shown to fail on a deliberate break, on the parsed model and on edited copies of the
HCL and the schedule files."""

from __future__ import annotations

import copy
import dataclasses
import re
import shutil
from pathlib import Path

import pytest

from deploy.consistency import check, code_model, parse_hcl, terraform_model
from tests.deploy.deploy_support import ROOT

TF = ROOT / "terraform"


@pytest.fixture(scope="module")
def code():
    return code_model(ROOT)


@pytest.fixture(scope="module")
def tf():
    return terraform_model(TF)


@pytest.fixture
def tree(tmp_path) -> Path:
    """A copy of terraform/ and schedules/ side by side, to break."""
    shutil.copytree(TF, tmp_path / "terraform", ignore=shutil.ignore_patterns(".terraform"))
    shutil.copytree(ROOT / "schedules", tmp_path / "schedules")
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not once in {path.name}"
    path.write_text(text.replace(old, new))


def test_terraform_matches_the_code(code, tf):
    assert check(code, tf, TF) == []
    # and the model is not empty: it holds what the code declares
    assert set(tf.functions) == {"chain_poll", "news_ingest", "decide", "risk_check", "retrain", "notify"}
    assert len(tf.subscriptions) == 10 and len(tf.topics) == 11 and len(tf.schedules) == 5
    assert tf.retry == {"minimum_backoff_s": 10, "maximum_backoff_s": 600, "max_delivery_attempts": 5}
    assert all(tf.wiring.values()) and len(tf.wiring) >= 15


# --- breaking the parsed model -------------------------------------------------------------


def test_a_removed_subscription_is_reported(code, tf):
    broken = copy.deepcopy(tf)
    del broken.subscriptions["chain.snapshot--decide"]
    assert check(code, broken) == [
        "subscription chain.snapshot--decide is in the code but not in terraform"]


def test_a_removed_schedule_is_reported(code, tf):
    broken = copy.deepcopy(tf)
    del broken.schedules["retrain-nightly"]
    assert check(code, broken) == ["schedule retrain-nightly is in the code but not in terraform"]


def test_a_new_secret_setting_without_a_terraform_secret_is_reported(code, tf):
    grown = dataclasses.replace(code, secrets={**code.secrets, "QS_BROKER_API_KEY": frozenset()})
    assert check(grown, tf) == ["secret QS_BROKER_API_KEY is in the code but not in terraform"]


def test_a_new_function_in_the_topology_is_reported(code, tf):
    grown = copy.deepcopy(code)
    grown.functions["backtest"] = dataclasses.replace(code.functions["decide"], source="functions/backtest")
    assert check(grown, tf) == ["function backtest is in the code but not in terraform"]


# --- breaking the HCL and the schedule files ---------------------------------------------------


def _problems(tree: Path, code) -> list[str]:
    return check(code, terraform_model(tree / "terraform"), tree / "terraform")


BREAKS = {
    "subscription removed from locals.tf": (
        "locals.tf", '    "decision.proposed--risk_check" = { topic = "decision.proposed", function = "risk_check" }\n', "",
        ["subscription decision.proposed--risk_check is in the code but not in terraform"]),
    "subscription routed to another function": (
        "locals.tf", 'topic = "notify.dead", function = "notify" }', 'topic = "notify.dead", function = "risk_check" }',
        ["subscription notify.dead--notify: (topic, function) is ('notify.dead', 'notify') in the "
         "code but ('notify.dead', 'risk_check') in terraform"]),
    "topic added": (
        "locals.tf", '    "news.event",\n', '    "news.event",\n    "news.digest",\n',
        ["topic news.digest is in terraform but not in the code"]),
    "maximum backoff differs from local/": (
        "locals.tf", "maximum_backoff_s     = 600", "maximum_backoff_s     = 300",
        ["retry policy maximum_backoff_s is 600 in shared/topology.py but 300 in terraform"]),
    "max delivery attempts differ from local/": (
        "locals.tf", "max_delivery_attempts = 5", "max_delivery_attempts = 7",
        ["retry policy max_delivery_attempts is 5 in shared/topology.py but 7 in terraform"]),
    "dead-letter topic renamed": (
        "locals.tf", 'dead_letter_topic        = "qs.dead-letter"', 'dead_letter_topic        = "qs.dlq"',
        ["dead-letter topic is 'qs.dead-letter' in the code but 'qs.dlq' in terraform"]),
    "database role renamed": (
        "locals.tf", 'app_role = "qs_app"', 'app_role = "quantsentinel"',
        ["the functions' database role is 'qs_app' in shared/config.py but 'quantsentinel' in "
         "terraform (locals.app_role)"]),
    "function memory differs": (
        "locals.tf", "memory_mb     = 4096", "memory_mb     = 2048",
        ["function retrain: memory_mb is 4096 in shared/topology.py but 2048 in terraform"]),
    "min instances above topology's": (
        "locals.tf", "max_instances = 2\n      min_instances = 0", "max_instances = 2\n      min_instances = 1",
        ["function retrain: min_instances is 0 in shared/topology.py but 1 in terraform"]),
    "secret bound to a function that never reads it": (
        "locals.tf", 'env       = "QS_UPSTOX_ACCESS_TOKEN"\n      functions = ["chain_poll"]',
        'env       = "QS_UPSTOX_ACCESS_TOKEN"\n      functions = ["chain_poll", "notify"]',
        ["secret QS_UPSTOX_ACCESS_TOKEN is bound to notify, whose code never reads it (least privilege)"]),
    "publish grant for a contract the code never publishes": (
        "locals.tf", 'publishes     = ["notify.dead"]', 'publishes     = ["notify.dead", "chain.snapshot"]',
        ["function notify may publish to ['chain.snapshot'] in terraform, but its code publishes "
         "no such contract"]),
    "ack deadline no longer the function's timeout": (
        "pubsub.tf", "min(local.function_specs[s.function].timeout_s, 600)", "60",
        ["terraform wiring: push subscriptions ack within the function's timeout, clamped to "
         "10-600 s (as local/) does not hold"]),
    "retry_policy block dropped from the push subscription": (
        "modules/topic/main.tf", '    minimum_backoff = "${var.retry_policy.minimum_backoff_s}s"\n', "",
        ["terraform wiring: push subscriptions set retry_policy from var.retry_policy does not hold"]),
    "dead_letter_policy not wired to the dead-letter topic": (
        "modules/topic/main.tf", "dead_letter_topic     = var.dead_letter_topic_id",
        'dead_letter_topic     = "projects/x/topics/other"',
        ["terraform wiring: push subscriptions set dead_letter_policy from the variables does not hold"]),
    "schedule files narrowed by the fileset pattern": (
        "locals.tf", 'fileset(local.schedule_dir, "*.yaml")', 'fileset(local.schedule_dir, "chain-*.yaml")',
        ["schedule news-ingest is in the code but not in terraform",
         "schedule notify-digest is in the code but not in terraform",
         "schedule retrain-nightly is in the code but not in terraform"]),
    "a schedule default that differs from shared/schedules.py": (
        "scheduler.tf", 'try(each.value.retry_count, 0)', 'try(each.value.retry_count, 3)',
        ["module.schedule defaults retry_count to 3, shared/schedules.py to 0"]),
    "a schedule field terraform ignores": (
        "scheduler.tf", "  attempt_deadline_s = try(each.value.attempt_deadline_s, 60)\n", "",
        ["module.schedule ignores the schedule field 'attempt_deadline_s'"]),
}


@pytest.mark.parametrize("case", list(BREAKS))
def test_a_deliberate_break_of_the_hcl_is_reported_exactly(case, tree, code):
    file, old, new, expected = BREAKS[case]
    _edit(tree / "terraform" / file, old, new)
    assert _problems(tree, code) == expected


def test_a_deleted_schedule_file_is_reported(tree, code):
    (tree / "schedules" / "news-ingest.yaml").unlink()
    assert _problems(tree, code) == ["schedule news-ingest is in the code but not in terraform"]


def test_a_schedule_file_only_terraform_reads_is_reported(tree, code):
    text = (tree / "schedules" / "notify-digest.yaml").read_text()
    (tree / "schedules" / "notify-weekly.yaml").write_text(text.replace("notify-digest", "notify-weekly"))
    assert _problems(tree, code) == ["schedule notify-weekly is in terraform but not in the code"]


def test_a_schedule_that_differs_from_the_code_is_reported(tree, code):
    _edit(tree / "schedules" / "chain-poll-nifty.yaml", '"* 9-15 * * 1-5"', '"*/5 9-15 * * 1-5"')
    assert _problems(tree, code) == [
        "schedule chain-poll-nifty: schedule is '* 9-15 * * 1-5' in schedules/ but "
        "'*/5 9-15 * * 1-5' as terraform reads it"]


# --- variables that repeat the code's names -------------------------------------------------------


def _validation_names(variable: str) -> set[str]:
    for block in parse_hcl(TF / "variables.tf")["variable"]:
        if variable in block:
            text = " ".join(str(v["condition"]) for v in block[variable]["validation"])
            return set(re.findall(r'"([a-z_.-]+)"', text))
    raise AssertionError(variable)


def test_variable_validations_name_the_real_functions_and_secrets(tf):
    loc = {}
    for block in parse_hcl(TF / "locals.tf")["locals"]:
        loc.update(block)
    assert _validation_names("function_overrides") == set(tf.functions)
    assert _validation_names("api_invokers") == {n for n, f in loc["functions"].items() if f["http_api"]}
    assert _validation_names("disabled_secrets") == {n for n, s in loc["secrets"].items() if not s["managed"]}
