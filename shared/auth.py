"""Request authentication for push, scheduler and operator calls.

Production (``QS_AUTH_MODE=google``): Pub/Sub push and Cloud Scheduler attach a
Google-signed OIDC ID token for a service account; :class:`GoogleIdTokenVerifier` checks
its signature (``google.auth.jwt`` against Google's published certificates), audience,
expiry and issuer, and that the email is one of the allowed invokers.

Local cloud and tests (``QS_AUTH_MODE=local``): the harness signs HS256 JWTs with a shared
secret (:class:`LocalTokenIssuer`) and :class:`LocalTokenVerifier` checks them the same way.
Neither mode has an "off" switch.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol

from shared.config import Settings
from shared.errors import AuthError, Forbidden, TransientError

LOCAL_ISSUER = "quantsentinel-local"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made the call: a service-account (or local harness) email."""

    email: str
    subject: str


class Verifier(Protocol):
    def verify(self, authorization: str | None, *, allowlist: bool = True) -> Principal:
        """The verified caller. ``allowlist=False`` accepts any verified identity (API routes
        authorise callers themselves, per tenant); events and schedules keep the list."""
        ...


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise AuthError("missing Authorization header (expected 'Bearer <OIDC ID token>')")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("Authorization header must be 'Bearer <token>'")
    return token.strip()


class LocalTokenIssuer:
    """Signs the harness's tokens, as the local Pub/Sub push and scheduler do."""

    def __init__(self, secret: str, *, ttl_seconds: int = 3600) -> None:
        self._secret = secret
        self._ttl = ttl_seconds

    def token(self, audience: str, email: str = "harness@quantsentinel.local",
              ttl_seconds: int | None = None) -> str:
        now = int(time.time())
        claims = {
            "iss": LOCAL_ISSUER,
            "aud": audience,
            "email": email,
            "email_verified": True,
            "sub": email,
            "iat": now,
            "exp": now + (ttl_seconds or self._ttl),
        }
        import jwt  # lazy: production (google mode) never needs it

        return jwt.encode(claims, self._secret, algorithm="HS256")

    def header(self, audience: str, email: str = "harness@quantsentinel.local") -> str:
        return f"Bearer {self.token(audience, email)}"


class LocalTokenVerifier:
    """Verifies harness tokens: signature, issuer, expiry, optional audience and allow-list."""

    def __init__(
        self, secret: str, *, audience: str | None = None, allowed: tuple[str, ...] = ()
    ) -> None:
        self._secret = secret
        self._audience = audience
        self._allowed = allowed

    def verify(self, authorization: str | None, *, allowlist: bool = True) -> Principal:
        import jwt  # lazy: production (google mode) never needs it

        token = _bearer(authorization)
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer=LOCAL_ISSUER,
                audience=self._audience,
                options={"verify_aud": self._audience is not None, "require": ["exp", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        return _allowed(claims, self._allowed if allowlist else ())


GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")


class GoogleIdTokenVerifier:
    """Verifies Google-signed OIDC ID tokens (Pub/Sub push, Cloud Scheduler, operators).

    The signature is checked with ``google.auth.jwt`` against Google's public certificates,
    fetched once and cached for ``cache_seconds`` (Google rotates them over days), so a
    warm instance verifies without a network call.
    """

    def __init__(self, audience: str | None, allowed: tuple[str, ...], *,
                 certs_url: str = GOOGLE_CERTS_URL, cache_seconds: float = 3600.0) -> None:
        if not allowed:
            raise ValueError("GoogleIdTokenVerifier needs at least one allowed invoker email")
        self._audience = audience
        self._allowed = allowed
        self._certs_url = certs_url
        self._cache_seconds = cache_seconds
        self._certs: dict[str, str] | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def _public_certs(self) -> dict[str, str]:
        with self._lock:
            if self._certs is None or time.monotonic() - self._fetched_at > self._cache_seconds:
                import requests

                try:
                    response = requests.get(self._certs_url, timeout=5)
                    response.raise_for_status()
                    self._certs = response.json()
                except (requests.RequestException, ValueError) as exc:
                    raise TransientError(f"cannot fetch Google's token certificates: {exc}") from exc
                self._fetched_at = time.monotonic()
            return self._certs

    def verify(self, authorization: str | None, *, allowlist: bool = True) -> Principal:
        token = _bearer(authorization)
        from google.auth import exceptions as google_exceptions
        from google.auth import jwt as google_jwt

        try:
            claims = google_jwt.decode(token, certs=self._public_certs(), audience=self._audience,
                                       clock_skew_in_seconds=10)
        except (ValueError, google_exceptions.GoogleAuthError) as exc:
            raise AuthError(f"invalid Google ID token: {exc}") from None
        if claims.get("iss") not in GOOGLE_ISSUERS:
            raise AuthError(f"token issuer {claims.get('iss')!r} is not Google")
        return _allowed(claims, self._allowed if allowlist else ())


def _allowed(claims: dict, allowed: tuple[str, ...]) -> Principal:
    email = claims.get("email")
    if not email or claims.get("email_verified") is not True:
        raise Forbidden("token carries no verified email")
    if allowed and email not in allowed:
        raise Forbidden(f"{email} is not an allowed invoker")
    return Principal(email=email, subject=str(claims.get("sub", email)))


def verifier_from_settings(settings: Settings) -> Verifier:
    if settings.auth_mode == "google":
        return GoogleIdTokenVerifier(settings.auth_audience, settings.allowed_invokers)
    assert settings.local_auth_secret is not None  # enforced by Settings
    return LocalTokenVerifier(
        settings.local_auth_secret.get_secret_value(),
        audience=settings.auth_audience,
        allowed=settings.allowed_invokers,
    )
