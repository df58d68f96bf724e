"""The error taxonomy: every exception says what the caller should do with the event.

A handler maps them as follows (see :mod:`shared.runtime`):

* :class:`PermanentError` and subclasses: the input can never succeed. Log the reason,
  record a rejection, send the message to the dead-letter path and **ack** it.
* :class:`TransientError` and subclasses: the world may heal (database restarting,
  emulator busy, provider rate limit). Raise so that Pub/Sub **retries** with backoff;
  after the subscription's max delivery attempts it dead-letters on its own.
* :class:`AuthError`: the caller is not who it must be; HTTP 401/403, no side effect.

Any other exception is a bug: it is treated as transient (retried, then dead-lettered), so
a poison message can never loop forever.
"""

from __future__ import annotations


class QuantsentinelError(Exception):
    """Base class. ``reason_code`` is a stable machine-readable code for audits and metrics."""

    reason_code: str = "error"

    def __init__(self, message: str, *, reason_code: str | None = None) -> None:
        super().__init__(message)
        if reason_code is not None:
            self.reason_code = reason_code

    @property
    def reason(self) -> str:
        return str(self)


class PermanentError(QuantsentinelError):
    """The input is wrong and retrying cannot help: log, record, ack."""

    reason_code = "permanent"
    http_status = 422


class TransientError(QuantsentinelError):
    """A dependency failed in a way that may heal: raise so the event is retried."""

    reason_code = "transient"
    http_status = 503


class MalformedEvent(PermanentError):
    """The request is not a CloudEvent or Pub/Sub push envelope we can read."""

    reason_code = "malformed_event"
    http_status = 400


class UnknownTopic(PermanentError):
    """The message names a topic that has no contract."""

    reason_code = "unknown_topic"
    http_status = 400


class ContractViolation(PermanentError):
    """The message payload fails its versioned contract."""

    reason_code = "contract_violation"
    http_status = 400


class StaleEvent(PermanentError):
    """The event is older than the handler's max age; it is dropped (acked) unprocessed."""

    reason_code = "stale_event"


class TenantRequired(PermanentError):
    """Tenant-scoped work was attempted without a tenant."""

    reason_code = "tenant_required"


class NotBuiltYet(PermanentError):
    """The function exists as an entry point but its service is not implemented yet."""

    reason_code = "not_built_yet"
    http_status = 501


class DatabaseUnavailable(TransientError):
    reason_code = "database_unavailable"


class PublishFailed(TransientError):
    reason_code = "publish_failed"


class AuthError(QuantsentinelError):
    """Authentication failed (401) or the caller is not allowed (403)."""

    reason_code = "unauthenticated"
    http_status = 401


class Forbidden(AuthError):
    reason_code = "forbidden"
    http_status = 403
