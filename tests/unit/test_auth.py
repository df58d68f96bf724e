import time

import jwt
import pytest

from shared.auth import LocalTokenIssuer, LocalTokenVerifier, verifier_from_settings
from shared.config import Settings
from shared.errors import AuthError, Forbidden

SECRET = "s3cret-for-tests-and-long-enough-for-hs256"


def test_issued_token_verifies_with_email_and_audience():
    issuer = LocalTokenIssuer(SECRET)
    verifier = LocalTokenVerifier(SECRET, audience="http://127.0.0.1:9000/", allowed=("push@x.local",))
    principal = verifier.verify(issuer.header("http://127.0.0.1:9000/", "push@x.local"))
    assert principal.email == "push@x.local"


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer ", "Bearer not.a.jwt"])
def test_missing_or_garbled_headers_are_401(header):
    with pytest.raises(AuthError) as err:
        LocalTokenVerifier(SECRET).verify(header)
    assert err.value.http_status == 401


def test_wrong_secret_wrong_audience_and_expiry_are_401():
    good = LocalTokenIssuer(SECRET)
    with pytest.raises(AuthError, match="Signature"):
        LocalTokenVerifier("another-secret-also-long-enough-for-hs256").verify(good.header("a"))
    with pytest.raises(AuthError, match="(?i)audience"):
        LocalTokenVerifier(SECRET, audience="b").verify(good.header("a"))
    expired = jwt.encode({"iss": "quantsentinel-local", "exp": int(time.time()) - 5, "email": "e"},
                         SECRET, algorithm="HS256")
    with pytest.raises(AuthError, match="expired"):
        LocalTokenVerifier(SECRET).verify(f"Bearer {expired}")


def test_unsigned_tokens_are_refused():
    unsigned = jwt.encode({"iss": "quantsentinel-local", "exp": int(time.time()) + 60, "email": "e"},
                          None, algorithm="none")
    with pytest.raises(AuthError):
        LocalTokenVerifier(SECRET).verify(f"Bearer {unsigned}")


def test_a_valid_caller_not_on_the_allow_list_is_403():
    issuer = LocalTokenIssuer(SECRET)
    with pytest.raises(Forbidden) as err:
        LocalTokenVerifier(SECRET, allowed=("scheduler@x",)).verify(issuer.header("a", "intruder@x"))
    assert err.value.http_status == 403


def test_deployed_settings_demand_google_auth_invokers_and_audience(monkeypatch):
    monkeypatch.delenv("K_SERVICE", raising=False)
    base = {"cloudsql_instance": "p:r:i"}
    with pytest.raises(ValueError, match="QS_AUTH_MODE=google"):
        Settings(environment="production", auth_mode="local", local_auth_secret=SECRET, **base)
    with pytest.raises(ValueError, match="ALLOWED_INVOKERS"):
        Settings(environment="production", auth_mode="google", **base)
    with pytest.raises(ValueError, match="AUTH_AUDIENCE"):
        Settings(environment="production", auth_mode="google",
                 allowed_invokers=("push@p.iam.gserviceaccount.com",), **base)
    s = Settings(environment="production", auth_mode="google", auth_audience="https://fn/",
                 allowed_invokers=("push@p.iam.gserviceaccount.com",), **base)
    assert type(verifier_from_settings(s)).__name__ == "GoogleIdTokenVerifier"


def test_running_on_cloud_run_refuses_local_auth_even_without_production_flag(monkeypatch):
    monkeypatch.setenv("K_SERVICE", "decide")
    with pytest.raises(ValueError, match="K_SERVICE"):
        Settings(local_auth_secret=SECRET)


def test_local_auth_needs_a_real_secret(monkeypatch):
    monkeypatch.delenv("QS_LOCAL_AUTH_SECRET", raising=False)
    monkeypatch.delenv("K_SERVICE", raising=False)
    with pytest.raises(ValueError, match="QS_LOCAL_AUTH_SECRET"):
        Settings()
    with pytest.raises(ValueError, match="QS_LOCAL_AUTH_SECRET"):
        Settings(local_auth_secret="short")
    assert Settings(local_auth_secret=SECRET).auth_mode == "local"
