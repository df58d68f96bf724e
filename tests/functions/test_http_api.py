"""`FunctionApp.on_http`: authenticated JSON APIs next to events and schedules."""

from __future__ import annotations

import textwrap

import functions_framework
import pytest

pytestmark = pytest.mark.integration

APP = textwrap.dedent('''
    from pydantic import BaseModel, ConfigDict, Field

    from shared.errors import PermanentError, TransientError
    from shared.runtime import FunctionApp

    class Echo(BaseModel):
        model_config = ConfigDict(frozen=True, extra="forbid")
        lots: int = Field(gt=0)
        mode: str = "ok"

    def echo_service(rt):
        def handle(cmd, call):
            if cmd.mode == "refuse":
                raise PermanentError("lots must be a multiple of 65", reason_code="bad_lots")
            if cmd.mode == "later":
                raise TransientError("market data is loading")
            if cmd.mode == "crash":
                raise RuntimeError("bug")
            return {"lots": cmd.lots, "caller": call.caller, "at": call.now.isoformat()}
        return handle

    app = FunctionApp("api_demo")
    app.on_http("/check", Echo, echo_service)
    entry = app.target()
''')


@pytest.fixture
def client(function_env, tmp_path):
    source = tmp_path / "main.py"
    source.write_text(APP)
    return functions_framework.create_app("entry", str(source)).test_client()


def test_a_valid_call_gets_the_services_answer(client, auth):
    response = client.post("/check", headers=auth, json={"lots": 2})
    assert response.status_code == 200
    assert response.json["lots"] == 2 and response.json["caller"] == "push@qs.local"
    assert client.get("/health").json["api"] == ["/check"]


@pytest.mark.parametrize(("body", "status", "error"), [
    ({"lots": 0}, 400, "bad_request"),
    ({"lots": 1, "surprise": True}, 400, "bad_request"),
    ({"lots": 1, "mode": "refuse"}, 422, "bad_lots"),
    ({"lots": 1, "mode": "later"}, 503, "transient"),
    ({"lots": 1, "mode": "crash"}, 500, "internal"),
])
def test_errors_map_to_statuses_with_reasons(client, auth, body, status, error):
    response = client.post("/check", headers=auth, json=body)
    assert response.status_code == status
    assert response.json["error"] == error and response.json["reason"]


def test_the_api_needs_a_valid_token(client):
    assert client.post("/check", json={"lots": 1}).status_code == 401
    assert client.get("/check").status_code == 405


def test_reserved_paths_cannot_be_api_routes():
    from shared.runtime import FunctionApp

    app = FunctionApp("x")
    for path in ("/", "/run", "/health", "check"):
        with pytest.raises(ValueError):
            app.on_http(path, dict, lambda rt: None)  # type: ignore[arg-type]
