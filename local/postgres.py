"""Embedded PostgreSQL 16 for the local cloud and the tests (``pgserver`` from PyPI).

When ``DATABASE_URL`` is set it is used instead (it must name a superuser or a role that
may create roles and databases, e.g. a throwaway CI server). Either way this module creates
the two roles and the database, then applies the migrations as the owner:

* ``qs_owner``: owns every object, runs DDL;
* ``qs_app``: the functions' role, NOSUPERUSER NOBYPASSRLS, DML only.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

from shared.adapters.db import ConnectionParams, DirectConnector, parse_database_url
from shared.adapters.migrations import apply_migrations

logger = logging.getLogger(__name__)

DATABASE = "quantsentinel"
MLFLOW_DATABASE = "quantsentinel_mlflow"
OWNER_ROLE = "qs_owner"
APP_ROLE = "qs_app"
# Local-only passwords: the embedded server trusts its Unix socket, and a CI server given
# through DATABASE_URL is throwaway. Production roles come from terraform + Secret Manager.
_LOCAL_PASSWORD = "qs-local-only"


@dataclass(frozen=True, slots=True)
class LocalDatabase:
    """How to reach the bootstrapped database as each role."""

    admin: ConnectionParams
    owner: ConnectionParams
    app: ConnectionParams
    started_in: float
    embedded: bool

    @property
    def app_url(self) -> str:
        return self.app.url()

    @property
    def mlflow_url(self) -> str:
        """MLflow's backend store: its own database, as the owner role."""
        return self.owner.with_database(MLFLOW_DATABASE).url()

    @property
    def owner_url(self) -> str:
        return self.owner.url()


class EmbeddedPostgres:
    """A pgserver-managed PostgreSQL in ``pgdata`` (a Unix socket, nothing on TCP)."""

    def __init__(self, pgdata: Path, *, delete_on_stop: bool = False) -> None:
        self.pgdata = pgdata.resolve()
        self._delete = delete_on_stop
        self._server = None

    def start(self) -> ConnectionParams:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
            import pgserver

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = pgserver.get_server(
            self.pgdata, cleanup_mode="delete" if self._delete else "stop"
        )
        return parse_database_url(self._server.get_uri("postgres"))

    def postmaster_pid(self) -> int | None:
        return self._server.get_pid() if self._server is not None else None

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def _role_sql(role: str) -> str:
    """Create the role if missing, and (re)assert its attributes either way."""
    attrs = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS"
    return (
        f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN "
        f"CREATE ROLE {role} {attrs} PASSWORD '{_LOCAL_PASSWORD}'; END IF; "
        f"ALTER ROLE {role} {attrs}; END $$"
    )


def _check_can_bootstrap(admin: ConnectionParams) -> None:
    conn = DirectConnector(admin)()
    try:
        row = conn.execute_unnamed(
            "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user").rows
    finally:
        conn.close()
    if not (row and row[0][0]):
        raise RuntimeError(
            f"the database URL names role {admin.user!r}, which cannot create roles: set "
            "QS_ADMIN_DATABASE_URL to a superuser URL, or unset DATABASE_URL to use the "
            "embedded PostgreSQL"
        )


def bootstrap(admin: ConnectionParams) -> tuple[ConnectionParams, ConnectionParams]:
    """Create roles and database if missing, apply migrations; return (owner, app) params."""
    conn = DirectConnector(admin)()
    try:
        conn.execute_simple(_role_sql(OWNER_ROLE))
        conn.execute_simple(_role_sql(APP_ROLE))
        exists = conn.execute_unnamed(
            "SELECT 1 FROM pg_database WHERE datname = $1", vals=(DATABASE,)
        ).rows
        if not exists:
            conn.execute_simple(f"CREATE DATABASE {DATABASE} OWNER {OWNER_ROLE}")
        # MLflow's tracking store needs a database of its own (it creates its tables in
        # public, which the application database keeps closed); the owner owns it
        if not conn.execute_unnamed("SELECT 1 FROM pg_database WHERE datname = $1",
                                    vals=(MLFLOW_DATABASE,)).rows:
            conn.execute_simple(f"CREATE DATABASE {MLFLOW_DATABASE} OWNER {OWNER_ROLE}")
    finally:
        conn.close()
    db_admin = admin.with_database(DATABASE)
    conn = DirectConnector(db_admin)()
    try:  # PostgreSQL 15+ no longer lets everyone create in public: the owner must own it.
        conn.execute_simple(f"ALTER SCHEMA public OWNER TO {OWNER_ROLE}")
        conn.execute_simple("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    finally:
        conn.close()
    owner = db_admin.with_user(OWNER_ROLE, _LOCAL_PASSWORD)
    app = db_admin.with_user(APP_ROLE, _LOCAL_PASSWORD)
    applied = apply_migrations(DirectConnector(owner))
    if applied:
        logger.info("applied %d migration(s)", len(applied))
    return owner, app


def start_database(pgdata: Path, *, fresh: bool = False) -> tuple[LocalDatabase, EmbeddedPostgres | None]:
    """Start (or reuse ``DATABASE_URL``) and bootstrap; returns the database and the server."""
    started = time.perf_counter()
    server: EmbeddedPostgres | None = None
    url = os.environ.get("QS_ADMIN_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        admin = parse_database_url(url)
        _check_can_bootstrap(admin)
    else:
        if fresh:  # a throwaway cluster of its own, never the developer's saved state
            pgdata = pgdata.parent / f"{pgdata.name}-fresh-{uuid.uuid4().hex[:8]}"
        server = EmbeddedPostgres(pgdata, delete_on_stop=fresh)
        admin = server.start()
    owner, app = bootstrap(admin)
    db = LocalDatabase(admin, owner, app, time.perf_counter() - started, server is not None)
    return db, server
