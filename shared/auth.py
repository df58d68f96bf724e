"""Request authentication for push, scheduler and operator calls.

Production (``QS_AUTH_MODE=google``): Pub/Sub push and Cloud Scheduler attach a
Google-signed OIDC ID token for a service account; :class:`GoogleIdTokenVerifier` checks
its signature, audience and expiry with ``google.oauth2.id_token`` and that the email is one
of the allowed invokers.

Local cloud and tests (``QS_AUTH_MODE=local``): the harness signs HS256 JWTs with a shared
secret (:class:`LocalTokenIssuer`) and :class:`LocalTokenVerifier` checks them the same way.
Neither mode has an "off" switch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from shared.config import Settings
from shared.errors import AuthError, Forbidden

LOCAL_ISSUER = "quantsentinel-local"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made the call: a service-account (or local harness) email."""

    email: str
    subject: str


class Verifier(Protocol):
    def verify(self, authorization: str | None) -> Principal: ...


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

    def token(self, audience: str, email: str = "harness@quantsentinel.local") -> str:
        now = int(time.time())
        claims = {
            "iss": LOCAL_ISSUER,
            "aud": audience,
            "email": email,
            "email_verified": True,
            "sub": email,
            "iat": now,
            "exp": now + self._ttl,
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

    def verify(self, authorization: str | None) -> Principal:
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
        return _allowed(claims, self._allowed)


class GoogleIdTokenVerifier:
    """Verifies Google-signed OIDC ID tokens (Pub/Sub push, Cloud Scheduler, operators)."""

    def __init__(self, audience: str | None, allowed: tuple[str, ...]) -> None:
        if not allowed:
            raise ValueError("GoogleIdTokenVerifier needs at least one allowed invoker email")
        self._audience = audience
        self._allowed = allowed
        self._request = None

    def verify(self, authorization: str | None) -> Principal:
        token = _bearer(authorization)
        from google.auth import exceptions as google_exceptions
        from google.auth.transport import requests as google_requests
        from google.oauth2 import id_token

        if self._request is None:  # caches Google's public certs between calls
            self._request = google_requests.Request()
        try:
            claims = id_token.verify_oauth2_token(token, self._request, audience=self._audience)
        except (ValueError, google_exceptions.GoogleAuthError) as exc:
            raise AuthError(f"invalid Google ID token: {exc}") from None
        return _allowed(claims, self._allowed)


def _allowed(claims: dict, allowed: tuple[str, ...]) -> Principal:
    email = claims.get("email")
    if not email or claims.get("email_verified") is False:
        raise Forbidden("token carries no verified email")
    if allowed and email not in allowed:
        raise Forbidden(f"{email} is not an allowed invoker")
    return Principal(email=email, subject=str(claims.get("sub", email)))


def verifier_from_settings(settings: Settings) -> Verifier:
    if settings.auth_mode == "google":
        return GoogleIdTokenVerifier(settings.auth_audience, settings.allowed_invokers)
    return LocalTokenVerifier(
        settings.local_auth_secret.get_secret_value(),
        audience=settings.auth_audience,
        allowed=settings.allowed_invokers,
    )
