"""The API's principals: per-tenant grants of authenticated identities (table
``api_principals``, migration 0004).

The functions read grants through ``principal_grants(email)`` (a SECURITY DEFINER function:
the app role cannot read the table); operators manage them as the owner role
(``qs principals grant|revoke|list``).
"""

from __future__ import annotations

from uuid import UUID

from shared.adapters.db import Database, Session
from shared.domain.access import Access, Grant, Role

__all__ = ["grant", "list_grants", "load_access", "revoke"]


def load_access(db: Database, email: str) -> Access:
    """The caller's grants (none when unknown or its tenants are inactive)."""
    with db.system() as s:
        rows = s.execute("SELECT tenant_id, role FROM principal_grants(:e)", e=email).rows
    return Access.of(email, (Grant(tenant_id=t, role=r) for t, r in rows))


def grant(owner: Session, email: str, tenant_id: UUID | None, role: Role) -> None:
    """Give ``email`` ``role`` for ``tenant_id`` (None: the platform); replaces its role
    there. Needs the owner role."""
    owner.execute(
        "INSERT INTO api_principals (email, tenant_id, role) VALUES (lower(:e), :t, :r) "
        "ON CONFLICT (email, tenant_key) DO UPDATE SET role = EXCLUDED.role, "
        "granted_at = now(), granted_by = current_user", e=email, t=tenant_id, r=role)


def revoke(owner: Session, email: str, tenant_id: UUID | None) -> bool:
    """Remove ``email``'s grant for ``tenant_id`` (None: the platform); False if none."""
    return bool(owner.execute(
        "DELETE FROM api_principals WHERE email = lower(:e) AND tenant_key = :k RETURNING 1",
        e=email, k=str(tenant_id) if tenant_id else "").rows)


def list_grants(owner: Session) -> list[dict[str, object]]:
    """Every grant, for operators."""
    return owner.execute(
        "SELECT email, tenant_id, role, granted_at, granted_by FROM api_principals "
        "ORDER BY email, tenant_key").dicts()
