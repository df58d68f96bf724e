import json
import subprocess
import sys
import uuid

import pytest

from shared.cli import main

pytestmark = pytest.mark.integration


def test_contracts_lists_topics_and_prints_schemas(capsys):
    assert main(["contracts"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["decision.proposed"] == [1]
    assert main(["contracts", "decision.proposed"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "win_probability" in schema["properties"]
    assert main(["contracts", "nope"]) == 2
    assert "unknown topic" in capsys.readouterr().err


def test_tenants_add_provisions_a_paper_only_tenant(pg, app_db, capsys):
    assert main(["tenants", "add", "Acme Desk", "--url", pg.owner_url]) == 0
    out = json.loads(capsys.readouterr().out)
    tenant = uuid.UUID(out["tenant_id"])
    with app_db.tenant(tenant) as s:
        assert s.execute("SELECT name, trading_mode FROM tenants").rows == (("Acme Desk", "paper"),)


def test_db_migrate_is_idempotent(pg, capsys):
    assert main(["db", "migrate", "--url", pg.owner_url]) == 0
    assert json.loads(capsys.readouterr().out) == {"applied": []}


def test_help_is_helpful():
    out = subprocess.run([sys.executable, "-m", "shared.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "tenants" in out.stdout and "contracts" in out.stdout
    out = subprocess.run([sys.executable, "-m", "local", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "run" in out.stdout and "up" in out.stdout


def test_principals_grant_list_and_revoke(pg, app_db, capsys):
    from shared.adapters.principals import load_access

    assert main(["tenants", "add", "Grant Desk", "--url", pg.owner_url]) == 0
    tenant = uuid.UUID(json.loads(capsys.readouterr().out)["tenant_id"])
    assert main(["principals", "grant", "Ops@CLI-Desk.Example", "--tenant", str(tenant),
                 "--role", "operator", "--url", pg.owner_url]) == 0
    assert json.loads(capsys.readouterr().out)["email"] == "ops@cli-desk.example"
    access = load_access(app_db, "ops@cli-desk.example")  # through the app role's function
    access.require_operator(tenant)
    assert not access.platform_operator
    assert main(["principals", "list", "--url", pg.owner_url]) == 0
    assert any(g["email"] == "ops@cli-desk.example" for g in json.loads(capsys.readouterr().out))
    assert main(["principals", "revoke", "ops@cli-desk.example", "--tenant", str(tenant),
                 "--url", pg.owner_url]) == 0
    assert json.loads(capsys.readouterr().out)["revoked"] is True
    assert load_access(app_db, "ops@cli-desk.example").grants == ()
    with pytest.raises(SystemExit, match="must be --role operator"):
        main(["principals", "grant", "x@y.example", "--url", pg.owner_url])


def test_the_app_role_cannot_read_or_write_grants(app_db):
    from pg8000.exceptions import DatabaseError

    for sql in ("SELECT * FROM api_principals",
                "INSERT INTO api_principals (email, role) VALUES ('me@x.example', 'operator')"):
        with pytest.raises(DatabaseError, match="permission denied"), app_db.system() as s:
            s.execute(sql)


def test_models_list_and_history_read_the_registry(pg, owner_db, capsys):
    import uuid as _uuid

    model = f"cli_model_{_uuid.uuid4().hex[:6]}"
    with owner_db.system() as s:
        for version, state in ((1, "archived"), (2, "production")):
            s.execute("INSERT INTO model_versions (model_type, version, state, artifact_uri, "
                      "sha256, size_bytes, feature_schema, metrics, code_commit, data_version, "
                      "data_end, run_id) VALUES (:m, :v, :st, 'gs://b/k', repeat('a', 64), 10, "
                      "'[]', CAST(:metrics AS jsonb), 'abc', 'daily/NIFTY.csv@sha256:1', "
                      "'2019-12-02', 'r')", m=model, v=version, st=state,
                      metrics=json.dumps({"qlike": (30 - version) / 100}))
    assert main(["models", "list", "--url", pg.owner_url]) == 0
    listing = {r["model_type"]: r for r in json.loads(capsys.readouterr().out)}
    assert listing[model]["versions"] == 2 and listing[model]["production"] == 2
    assert main(["models", "history", model, "--url", pg.owner_url]) == 0
    history = json.loads(capsys.readouterr().out)
    assert [(r["version"], r["state"]) for r in history] == [(1, "archived"), (2, "production")]
    assert history[1]["metrics"] == {"qlike": 0.28}
    with pytest.raises(SystemExit, match="no versions"):
        main(["models", "history", "nope_model", "--url", pg.owner_url])
