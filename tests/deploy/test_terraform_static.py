"""terraform/ checked without a cloud or the registry: formatting (terraform fmt), the
static scan (checkov, from .venv-infra), and the conventions every file keeps (typed,
described and validated variables, pinned providers, justified skips)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from deploy.consistency import parse_hcl
from tests.deploy.deploy_support import ROOT, record

TF = ROOT / "terraform"
CHECKOV = ROOT / ".venv-infra" / "bin" / "checkov"
MODULES = [TF, *sorted(p for p in (TF / "modules").iterdir() if p.is_dir())]


def _tf_files() -> list[Path]:
    return sorted(TF.rglob("*.tf"))


# --- terraform fmt -------------------------------------------------------------------------


def _terraform() -> str:
    found = shutil.which("terraform")
    if found is None:
        pytest.skip("terraform is not on PATH: `terraform fmt -check` needs the CLI "
                    "(the HCL is still parsed and scanned by the other tests)")
    return found


def _fmt_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([_terraform(), "fmt", "-check", "-recursive", "-diff", str(path)],
                          capture_output=True, text=True)


def test_terraform_is_formatted():
    out = _fmt_check(TF)
    assert out.returncode == 0, f"run `terraform fmt -recursive terraform`:\n{out.stdout}{out.stderr}"


def test_fmt_check_catches_a_misformatted_file(tmp_path):
    _terraform()
    (tmp_path / "bad.tf").write_text('locals {\n  a = 1\n    bbb = "x"\n}\n')
    assert _fmt_check(tmp_path).returncode != 0


# --- checkov -------------------------------------------------------------------------------


NEGATIVE = "google_storage_bucket.deliberately_open"


@pytest.fixture(scope="module")
def checkov(tmp_path_factory) -> dict:
    """One checkov run (its start-up is most of the cost) over a copy of terraform/ plus a
    deliberately open bucket, whose checks must fail."""
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: `make test` creates .venv-infra from "
                    "requirements-infra.lock (or run `make infra-venv`)")
    copy = tmp_path_factory.mktemp("scan") / "terraform"
    shutil.copytree(TF, copy, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
    (copy / "zz_negative_sample.tf").write_text(
        f'resource "{NEGATIVE.split(".")[0]}" "{NEGATIVE.split(".")[1]}" {{\n'
        '  name     = "open"\n  location = "asia-south1"\n}\n')
    started = time.perf_counter()
    out = subprocess.run([str(CHECKOV), "-d", str(copy), "--framework", "terraform",
                          "--skip-download", "--compact", "-o", "json"],
                         capture_output=True, text=True)
    record("checkov scan of terraform/ (+ a negative sample)", time.perf_counter() - started)
    assert out.stdout.strip(), f"checkov printed nothing (exit {out.returncode}): {out.stderr[-2000:]}"
    report = json.loads(out.stdout)
    return report[0] if isinstance(report, list) else report


def test_checkov_finds_no_failed_check_and_every_skip_is_justified(checkov):
    report = checkov
    results = report["results"]
    mine = [c for c in results["failed_checks"] if c["resource"] != NEGATIVE]
    passed = [c for c in results["passed_checks"] if c["resource"] != NEGATIVE]
    record("checkov on terraform/: passed / failed / skipped",
           f"{len(passed)} / {len(mine)} / {len(results['skipped_checks'])}")
    summary = report["summary"]
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in mine]
    assert failed == [], "checkov failed checks:\n" + "\n".join(failed)
    assert summary["parsing_errors"] == 0
    assert len(passed) >= 60  # the scan really ran over the resources
    for skipped in report["results"]["skipped_checks"]:
        reason = (skipped.get("check_result") or {}).get("suppress_comment", "")
        assert len(reason) >= 40, f"{skipped['check_id']} on {skipped['resource']}: skip reason {reason!r}"


def test_every_inline_skip_names_a_check_and_a_reason():
    skips = [(p, line) for p in _tf_files() for line in p.read_text().splitlines()
             if "checkov:skip" in line]
    assert skips
    for path, line in skips:
        assert re.search(r"#checkov:skip=CKV2?_GCP_\d+:\S.{39,}", line), f"{path.name}: {line.strip()}"


def test_checkov_fails_a_public_bucket(checkov):
    """The scan is not a rubber stamp: a bucket without public access prevention, uniform
    access or versioning fails it."""
    ids = {c["check_id"] for c in checkov["results"]["failed_checks"] if c["resource"] == NEGATIVE}
    assert {"CKV_GCP_114", "CKV_GCP_29", "CKV_GCP_78"} <= ids


# --- conventions ---------------------------------------------------------------------------


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_variables_are_typed_and_described(module):
    variables = {}
    for path in sorted(module.glob("*.tf")):
        for block in parse_hcl(path).get("variable", []):
            variables.update(block)
    assert variables
    for name, body in variables.items():
        assert body.get("type"), f"{module.name}: variable {name} has no type"
        assert len(str(body.get("description", ""))) >= 10, f"{module.name}: variable {name} has no description"


def test_root_variables_that_take_free_values_are_validated():
    variables = {}
    for block in parse_hcl(TF / "variables.tf").get("variable", []):
        variables.update(block)
    unvalidated = sorted(n for n, b in variables.items()
                         if "validation" not in b and b.get("type") not in ("${bool}", "bool"))
    assert unvalidated == []


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_terraform_and_providers_are_pinned(module):
    blocks = parse_hcl(module / "versions.tf")["terraform"]
    settings = {k: v for b in blocks for k, v in b.items()}
    assert re.fullmatch(r">= 1\.\d+\.\d+, < 2\.0\.0", settings["required_version"])
    providers = {k: v for b in settings["required_providers"] for k, v in b.items()}
    assert providers
    for name, spec in providers.items():
        assert spec["source"].startswith("hashicorp/"), name
        assert re.fullmatch(r"~> \d+\.\d+", spec["version"]), f"{name}: {spec['version']}"
    used = {m.group(1) for p in module.glob("*.tf")
            for m in re.finditer(r'^(?:resource|data) "([a-z]+)_', p.read_text(), re.M)}
    assert used <= set(providers) | {"google"}
    if module == TF:
        assert {"google", "google-beta", "random"} <= set(providers)
        assert settings["backend"], "the root module keeps its state remotely"


def test_outputs_are_described():
    for module in MODULES:
        for block in parse_hcl(module / "outputs.tf").get("output", []):
            for name, body in block.items():
                assert body.get("description"), f"{module.name}: output {name}"


def test_example_var_file_sets_only_declared_variables_and_all_required_ones():
    variables = {}
    for block in parse_hcl(TF / "variables.tf").get("variable", []):
        variables.update(block)
    example = parse_hcl(TF / "env" / "example.tfvars")
    assert set(example) <= set(variables)
    required = {n for n, b in variables.items() if "default" not in b}
    assert required <= set(example)


def _members(value) -> list[str]:
    if isinstance(value, dict):
        return [m for k, v in value.items()
                for m in ([str(v)] if k in ("member", "members") else _members(v))]
    if isinstance(value, list):
        return [m for v in value for m in _members(v)]
    return []


def test_functions_are_never_public_and_buckets_never_open():
    members = [m for path in _tf_files() for m in _members(parse_hcl(path).get("resource", []))]
    assert len(members) >= 10
    assert not [m for m in members if "allUsers" in m or "allAuthenticatedUsers" in m]
    for path in _tf_files():
        for block in parse_hcl(path).get("resource", []):
            for name, body in block.get("google_storage_bucket", {}).items():
                assert body["uniform_bucket_level_access"] is True, name
                assert body["public_access_prevention"] == "enforced", name
                assert body["versioning"][0]["enabled"] is True, name
                assert body.get("lifecycle_rule"), name


# --- terraform itself evaluating the locals, offline ----------------------------------------

HARNESS = '''
variable "name_prefix" {
  type    = string
  default = "qs"
}
variable "labels" {
  type    = map(string)
  default = {}
}
# scheduler.tf's arguments, as terraform_data (the built-in provider: nothing to download)
resource "terraform_data" "schedule" {
  for_each = local.schedules
  input = {
    description        = try(each.value.description, "")
    schedule           = each.value.schedule
    time_zone          = try(each.value.time_zone, "Asia/Kolkata")
    attempt_deadline_s = try(each.value.attempt_deadline_s, 60)
    retry_count        = try(each.value.retry_count, 0)
    payload            = jsonencode(try(each.value.payload, {}))
    target             = local.functions[each.value.target].source
  }
}
output "schedules" {
  value = { for k, v in terraform_data.schedule : k => v.output }
}
output "functions" {
  value = local.functions
}
output "subscriptions" {
  value = local.subscriptions
}
'''


def test_terraform_evaluates_the_locals_and_the_schedule_files_offline(tmp_path):
    """terraform itself (no provider, no registry) reads schedules/*.yaml through locals.tf's
    fileset() and yamldecode(), iterates them with for_each, and fills in the defaults:
    the result is the jobs shared/schedules.py loads."""
    from shared.schedules import load_schedules
    from shared.topology import FUNCTIONS

    terraform = _terraform()
    work = tmp_path / "terraform"
    work.mkdir()
    shutil.copytree(ROOT / "schedules", tmp_path / "schedules")
    shutil.copy(TF / "locals.tf", work / "locals.tf")
    (work / "harness.tf").write_text(HARNESS)
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "TF_IN_AUTOMATION": "1",
           "CHECKPOINT_DISABLE": "1"}
    started = time.perf_counter()
    for args in (["init", "-backend=false", "-input=false"],
                 ["apply", "-auto-approve", "-input=false", "-lock=false"]):
        out = subprocess.run([terraform, f"-chdir={work}", *args], capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stdout + out.stderr
    shown = subprocess.run([terraform, f"-chdir={work}", "output", "-json"], capture_output=True,
                           text=True, env=env, check=True)
    record("terraform evaluates locals.tf offline", time.perf_counter() - started)
    outputs = {k: v["value"] for k, v in json.loads(shown.stdout).items()}
    sources = {f.name: f.source for f in FUNCTIONS}
    expected = {j.name: {"description": j.description, "schedule": j.schedule, "time_zone": j.time_zone,
                         "attempt_deadline_s": j.attempt_deadline_s, "retry_count": j.retry_count,
                         "payload": json.dumps(j.payload, separators=(",", ":"), sort_keys=True),
                         "target": sources[j.target]}
                for j in load_schedules(ROOT / "schedules")}
    assert outputs["schedules"] == expected
    assert set(outputs["functions"]) == set(sources)
    assert len(outputs["subscriptions"]) == 10


def test_the_schema_script_is_valid_bash_and_reads_the_secrets_terraform_creates():
    script = ROOT / "deploy" / "ops" / "schema.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    loc = {}
    for block in parse_hcl(TF / "locals.tf")["locals"]:
        loc.update(block)
    assert "db-app-password" in loc["secrets"]
    assert '"$PREFIX-db-app-password"' in text and '"$PREFIX-db-owner-password"' in text
    assert "db-owner-password" in (TF / "secrets.tf").read_text()
    # the role the functions log in as, with local/postgres.py's attributes
    assert f"CREATE ROLE {loc['app_role']} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS" in text
    network = (TF / "network.tf").read_text()
    assert 'google_secret_manager_secret.app["db-app-password"]' in network
