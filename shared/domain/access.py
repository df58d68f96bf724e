"""Who may do what through the HTTP API: per-tenant grants (pure; the grants are loaded by
:func:`shared.adapters.principals.load_grants`).

A :class:`Grant` gives an identity a role for one tenant, or for the whole platform when
``tenant_id`` is None:

=========  ===============================================================================
role       may
=========  ===============================================================================
trader     check trade ideas for the tenant (``POST /check``)
operator   also trip and reset the tenant's kill switches; a *platform* operator (no
           tenant) trips and resets any switch, global ones (the master kill) included
=========  ===============================================================================

A platform operator may also check trades for any tenant. Everything else is refused with a
:class:`NotGranted` (HTTP 403) that says what was missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from shared.errors import PermanentError

__all__ = ["Access", "Grant", "NotGranted", "Role"]

Role = Literal["trader", "operator"]


class NotGranted(PermanentError):
    """The verified caller has no grant for this tenant or action."""

    reason_code = "forbidden"
    http_status = 403


@dataclass(frozen=True, slots=True)
class Grant:
    """One role of one identity, for a tenant or (``tenant_id`` None) the platform."""

    tenant_id: UUID | None
    role: Role


@dataclass(frozen=True, slots=True)
class Access:
    """An authenticated caller and its grants."""

    email: str
    grants: tuple[Grant, ...]

    @classmethod
    def of(cls, email: str, grants: Iterable[Grant]) -> Access:
        return cls(email=email, grants=tuple(grants))

    @property
    def platform_operator(self) -> bool:
        return any(g.tenant_id is None and g.role == "operator" for g in self.grants)

    def _has(self, tenant_id: UUID, roles: tuple[Role, ...]) -> bool:
        return self.platform_operator or any(
            g.tenant_id == tenant_id and g.role in roles for g in self.grants)

    def require_trader(self, tenant_id: UUID) -> None:
        """Checking trades for ``tenant_id`` needs a trader or operator grant for it."""
        if not self._has(tenant_id, ("trader", "operator")):
            raise NotGranted(f"{self.email} has no grant for tenant {tenant_id} "
                             f"(a proposal for another tenant is refused)")

    def require_operator(self, tenant_id: UUID | None) -> None:
        """Tripping or resetting a switch of ``tenant_id`` (None: a global row) needs an
        operator grant for that tenant, or a platform operator grant."""
        if tenant_id is None:
            if not self.platform_operator:
                raise NotGranted(f"{self.email} is not a platform operator: only a platform "
                                 f"operator trips or resets a switch for every tenant")
            return
        if not self._has(tenant_id, ("operator",)):
            raise NotGranted(f"{self.email} is not an operator of tenant {tenant_id}")
