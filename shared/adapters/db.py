"""PostgreSQL access: connection factories, a small pool, and tenant-scoped sessions.

Everything above :data:`ConnectionFactory` is the same locally and in production:

* locally, :class:`DirectConnector` opens pg8000 connections from ``DATABASE_URL``
  (a TCP host, or a Unix socket directory as pgserver uses);
* in GCP, :class:`CloudSqlConnector` opens them through ``cloud-sql-python-connector``.

Both return pg8000 connections, and both set ``TCP_NODELAY`` on TCP sockets: without it
small writes stall 40-50 ms on Nagle's algorithm and delayed ACKs.

Sessions
--------
:meth:`Database.tenant` opens a transaction bound to one tenant (``SET LOCAL
app.tenant_id``); row-level security then shows and accepts only that tenant's rows.
:meth:`Database.system` opens a transaction with no tenant: tenant tables look empty there,
so a forgotten tenant can never read another tenant's rows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import UUID

import pg8000.dbapi
import pg8000.native
from pg8000.converters import make_params
from pg8000.exceptions import DatabaseError, InterfaceError

from shared.errors import DatabaseUnavailable, TenantRequired

logger = logging.getLogger(__name__)

# Prepared statements kept per connection (by SQL text, least recently used dropped first).
_PREPARED_PER_CONNECTION = 256
# A cached plan the server can no longer use (the table changed under it): re-prepare.
_STALE_PLAN_SQLSTATES = ("0A000", "26000")

_ISOLATION_LEVELS = frozenset({"SERIALIZABLE", "REPEATABLE READ", "READ COMMITTED"})

# SQLSTATE classes worth a retry: connection failures, serialization failures and
# deadlocks, insufficient resources, operator intervention (restarts, failovers).
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "40001", "40P01", "53", "57P")


class PgConnection(Protocol):
    """The part of a pg8000 connection the sessions use (native and DB-API alike)."""

    def execute_simple(self, statement: str) -> Any: ...
    def execute_unnamed(self, statement: str, vals: Any = ..., oids: Any = ..., stream: Any = ...) -> Any: ...
    def close(self) -> None: ...


ConnectionFactory = Callable[[], PgConnection]


@dataclass(frozen=True, slots=True)
class ConnectionParams:
    """What ``DATABASE_URL`` says, parsed."""

    user: str
    database: str
    password: str | None = field(default=None, repr=False)
    host: str | None = None
    port: int = 5432
    unix_sock: str | None = None
    ssl: bool = False

    def with_user(self, user: str, password: str | None = None) -> ConnectionParams:
        return dataclasses.replace(self, user=user, password=password)

    def with_database(self, database: str) -> ConnectionParams:
        return dataclasses.replace(self, database=database)

    def url(self) -> str:
        """Back to a URL (password included: treat as a secret)."""
        auth = self.user + (f":{self.password}" if self.password else "")
        if self.unix_sock is not None:
            sock_dir = self.unix_sock.rsplit("/", 1)[0]
            return f"postgresql://{auth}@/{self.database}?host={sock_dir}&port={self.port}"
        return f"postgresql://{auth}@{self.host}:{self.port}/{self.database}"


def parse_database_url(url: str) -> ConnectionParams:
    """Parse ``postgresql://user[:pw]@host[:port]/db`` or ``postgresql://user@/db?host=/dir``.

    A ``host`` query parameter (or a host starting with ``/``) names a Unix socket directory,
    as libpq does; ``sslmode=require`` turns on TLS for TCP.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres", "postgresql+pg8000"):
        raise ValueError(f"DATABASE_URL must start with postgresql://, got {parts.scheme!r}://")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    database = unquote(parts.path.lstrip("/")) or query.get("dbname", "")
    user = unquote(parts.username or query.get("user", "")) or "postgres"
    password = unquote(parts.password) if parts.password else query.get("password")
    port = int(query.get("port") or parts.port or 5432)
    host = query.get("host") or (unquote(parts.hostname) if parts.hostname else None)
    if not database:
        raise ValueError("DATABASE_URL names no database")
    if host and host.startswith("/"):
        return ConnectionParams(
            user=user,
            database=database,
            password=password,
            port=port,
            unix_sock=f"{host}/.s.PGSQL.{port}",
        )
    return ConnectionParams(
        user=user,
        database=database,
        password=password,
        host=host or "localhost",
        port=port,
        ssl=query.get("sslmode") in ("require", "verify-ca", "verify-full"),
    )


def tcp_socket(host: str, port: int, timeout: float) -> socket.socket:
    """Open a TCP socket to the server with ``TCP_NODELAY`` and keep-alive set."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    return sock


class DirectConnector:
    """Connection factory for a URL: TCP (with ``TCP_NODELAY``) or a Unix socket."""

    def __init__(self, params: ConnectionParams, *, timeout: float = 10.0,
                 application_name: str = "quantsentinel") -> None:
        self.params = params
        self._timeout = timeout
        self._application_name = application_name

    def __call__(self) -> PgConnection:
        p = self.params
        try:
            if p.unix_sock is not None:
                return pg8000.native.Connection(
                    p.user, database=p.database, password=p.password, unix_sock=p.unix_sock,
                    timeout=self._timeout, application_name=self._application_name,
                )
            assert p.host is not None
            sock = tcp_socket(p.host, p.port, self._timeout)
            context = ssl.create_default_context() if p.ssl else None
            return pg8000.native.Connection(
                p.user, database=p.database, password=p.password, sock=sock,
                ssl_context=context, timeout=self._timeout,
                application_name=self._application_name,
            )
        except (InterfaceError, OSError) as exc:
            raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc


class CloudSqlConnector:
    """Connection factory through the Cloud SQL Python Connector (pg8000 driver)."""

    def __init__(self, instance: str, *, user: str, database: str, password: str | None,
                 iam_auth: bool, ip_type: Literal["private", "public", "psc"] = "private") -> None:
        self._instance = instance
        self._kwargs: dict[str, Any] = {"user": user, "db": database, "enable_iam_auth": iam_auth}
        if password:
            self._kwargs["password"] = password
        self._ip_type = ip_type
        self._connector: Any = None
        self._lock = threading.Lock()

    def __call__(self) -> PgConnection:
        from google.cloud.sql.connector import Connector, IPTypes  # lazy: cold start

        with self._lock:
            if self._connector is None:
                self._connector = Connector(ip_type=getattr(IPTypes, self._ip_type.upper()))
        try:
            conn = self._connector.connect(self._instance, "pg8000", **self._kwargs)
        except Exception as exc:  # the connector raises many types for network trouble
            raise DatabaseUnavailable(f"cannot connect to Cloud SQL {self._instance}: {exc}") from exc
        conn._usock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def close(self) -> None:
        if self._connector is not None:
            self._connector.close()


def connector_from_settings(settings: Any) -> ConnectionFactory:
    """The production or local connection factory, chosen by the settings."""
    if settings.cloudsql_instance:
        password = settings.db_password.get_secret_value() if settings.db_password else None
        return CloudSqlConnector(
            settings.cloudsql_instance, user=settings.db_user, database=settings.db_name,
            password=password, iam_auth=settings.db_iam_auth, ip_type=settings.db_ip_type,
        )
    if settings.database_url is None:
        raise DatabaseUnavailable(
            "no database configured: set DATABASE_URL (local) or QS_CLOUDSQL_INSTANCE (GCP)"
        )
    return DirectConnector(parse_database_url(settings.database_url.get_secret_value()))


# --- sessions ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _statement(sql: str) -> tuple[str, Callable[[Mapping[str, Any]], tuple[Any, ...]]]:
    return pg8000.native.to_statement(sql)


def _is_transient(exc: DatabaseError) -> bool:
    info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    code = str(info.get("C", ""))
    return code.startswith(_TRANSIENT_SQLSTATE_PREFIXES)


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a pg8000 error, if it carries one."""
    if isinstance(exc, DatabaseError) and exc.args and isinstance(exc.args[0], dict):
        return exc.args[0].get("C")
    return None


@dataclass(frozen=True, slots=True)
class Result:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None


class Session:
    """One open transaction. Use :meth:`Database.tenant` or :meth:`Database.system`."""

    def __init__(self, conn: PgConnection, tenant_id: UUID | None) -> None:
        self._conn = conn
        self.tenant_id = tenant_id
        self.broken = False  # the connection failed under us: never reuse it

    def execute(self, sql: str, **params: Any) -> Result:
        """Run one statement with ``:name`` parameters.

        Raises
        ------
        DatabaseUnavailable
            The connection failed (socket error, timeout, protocol error); the session is
            marked broken and its connection is discarded.
        pg8000.exceptions.DatabaseError
            The server refused the statement (constraint, permission, RLS, ...).
        """
        statement, make_vals = _statement(sql)
        context = self._run(statement, make_vals(params))
        columns = tuple(c["name"] for c in (context.columns or ()))
        return Result(columns, tuple(tuple(r) for r in (context.rows or ())))

    def _run(self, statement: str, vals: Any, stream: Any = None) -> Any:
        try:
            if stream is None and hasattr(self._conn, "prepare_statement"):
                return self._run_prepared(statement, vals)
            return self._conn.execute_unnamed(statement, vals=vals, stream=stream)
        except DatabaseError:
            raise
        except (InterfaceError, OSError, EOFError, struct.error) as exc:
            self.broken = True
            raise DatabaseUnavailable(f"database connection failed: {exc}") from exc

    def _run_simple(self, sql: str) -> Any:
        """One simple-query round trip (no parameters: our own constant SQL only)."""
        try:
            return self._conn.execute_simple(sql)
        except DatabaseError:
            raise
        except (InterfaceError, OSError, EOFError, struct.error) as exc:
            self.broken = True
            raise DatabaseUnavailable(f"database connection failed: {exc}") from exc

    def _run_prepared(self, statement: str, vals: Any) -> Any:
        """Run ``statement`` as a prepared statement of this connection: parsed and
        planned once per connection, then one round trip (Bind/Execute/Sync) per call,
        where an unnamed statement takes three (Parse, Describe, Bind/Execute)."""
        conn: Any = self._conn
        cache: dict[str, tuple[bytes, Any, Any]] | None = getattr(conn, "_qs_prepared", None)
        if cache is None:
            cache = {}
            conn._qs_prepared = cache
        entry = cache.pop(statement, None)
        if entry is None:
            if len(cache) >= _PREPARED_PER_CONNECTION:
                oldest = next(iter(cache))
                conn.close_prepared_statement(cache.pop(oldest)[0])
            entry = conn.prepare_statement(statement, ())
        cache[statement] = entry  # most recently used last
        name, columns, input_funcs = entry
        try:
            return conn.execute_named(name, make_params(conn.py_types, vals), columns,
                                      input_funcs, statement)
        except DatabaseError as exc:
            if sqlstate(exc) in _STALE_PLAN_SQLSTATES:
                # the table changed under the plan (a migration): prepare afresh next time,
                # and let the caller retry (transient) rather than fail for good
                cache.pop(statement, None)
                raise DatabaseUnavailable(f"prepared plan went stale: {exc}") from exc
            raise

    def copy_rows(self, table: str, columns: tuple[str, ...], text: str) -> None:
        """Bulk insert with ``COPY table (columns) FROM STDIN`` in this transaction.

        ``text`` is PostgreSQL's COPY text format (tab-separated, ``\\N`` for NULL, one
        row per line, backslash, tab and newline escaped). For large numeric tables prefer
        :meth:`copy_binary`, which spares the server parsing every number.
        """
        import io

        cols = ", ".join(columns)  # constants from our own code, never input
        self._run(f"COPY {table} ({cols}) FROM STDIN", (), stream=io.StringIO(text))

    def copy_binary(self, table: str, columns: tuple[str, ...], data: bytes) -> None:
        """Bulk insert a binary COPY stream (see :mod:`shared.adapters.pgbinary`)."""
        import io

        cols = ", ".join(columns)  # constants from our own code, never input
        self._run(f"COPY {table} ({cols}) FROM STDIN (FORMAT binary)", (), stream=io.BytesIO(data))

    def claim_event(self, consumer: str, event_id: str, *, topic: str | None = None,
                    per_tenant: bool = False) -> bool:
        """Record that ``consumer`` handled ``event_id``; False if it already had.

        Call it first inside the transaction that makes the event's writes: both commit
        or neither does, so a redelivered event finds its claim and changes nothing.
        """
        tenant = self.tenant_id if per_tenant else None
        if per_tenant and tenant is None:
            raise TenantRequired("a per-tenant claim needs a tenant session")
        result = self.execute(
            "INSERT INTO processed_events (consumer, event_id, scope, tenant_id, topic) "
            "VALUES (:consumer, :event_id, :scope, :tenant, :topic) "
            "ON CONFLICT DO NOTHING RETURNING 1",
            consumer=consumer, event_id=event_id, scope=str(tenant) if tenant else "",
            tenant=tenant, topic=topic,
        )
        return bool(result.rows)

    def audit(self, *, actor: str, action: str, subject: str | None = None,
              event_id: str | None = None, details: Mapping[str, Any] | None = None) -> int:
        """Append one audit row for the session's tenant; returns its id."""
        if self.tenant_id is None:
            raise TenantRequired("audit rows belong to a tenant: use Database.tenant(...)")
        import json

        return self.execute(
            "INSERT INTO audit_log (tenant_id, actor, action, subject, event_id, details) "
            "VALUES (:tenant, :actor, :action, :subject, :event_id, CAST(:details AS jsonb)) "
            "RETURNING audit_id",
            tenant=self.tenant_id, actor=actor, action=action, subject=subject,
            event_id=event_id, details=json.dumps(dict(details or {}), default=str),
        ).scalar()


class Database:
    """A small thread-safe pool of connections from one factory, handing out sessions.

    Functions gen2 may serve several requests at once per instance (threads), so a
    connection is lent to one transaction at a time and returned afterwards. A connection
    that failed mid-transaction is closed, never reused.
    """

    def __init__(self, factory: ConnectionFactory, *, max_idle: int = 4) -> None:
        self._factory = factory
        self._idle: list[PgConnection] = []
        self._lock = threading.Lock()
        self._max_idle = max_idle

    def prewarm(self, n: int | None = None) -> int:
        """Open connections until ``n`` (default: the pool's idle maximum) are idle, so the
        first concurrent transactions pay no connect (pg8000's SCRAM handshake is pure
        Python, tens of milliseconds a connection). Returns how many were opened."""
        want = min(self._max_idle if n is None else n, self._max_idle)
        with self._lock:
            missing = want - len(self._idle)
        opened = [self._factory() for _ in range(max(missing, 0))]
        for conn in opened:
            self._release(conn, healthy=True)
        return len(opened)

    def _acquire(self) -> PgConnection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._factory()

    def _release(self, conn: PgConnection, healthy: bool) -> None:
        if healthy:
            with self._lock:
                if len(self._idle) < self._max_idle:
                    self._idle.append(conn)
                    return
        with contextlib.suppress(Exception):
            conn.close()

    @contextlib.contextmanager
    def _transaction(self, tenant_id: UUID | None, isolation: str | None) -> Iterator[Session]:
        conn = self._acquire()
        session = Session(conn, tenant_id)
        healthy = False
        try:
            if isolation is not None and isolation not in _ISOLATION_LEVELS:
                raise ValueError(f"not an isolation level: {isolation!r}")
            begin = "BEGIN" if isolation is None else f"BEGIN ISOLATION LEVEL {isolation}"
            # Always set the tenant, to '' for system sessions: whatever a previous user of
            # this pooled connection did at session level, RLS sees exactly this tenant.
            # One simple-query round trip for both; the id is a UUID's canonical text (the
            # constructor below checked it), never caller text.
            tid = str(UUID(str(tenant_id))) if tenant_id is not None else ""
            session._run_simple(f"{begin}; SELECT set_config('app.tenant_id', '{tid}', true)")
            try:
                yield session
            except BaseException:
                if not session.broken:
                    session._run_simple("ROLLBACK")
                    healthy = True
                raise
            session._run_simple("COMMIT")
            healthy = True
        except DatabaseError as exc:
            if _is_transient(exc):
                raise DatabaseUnavailable(f"transient database error: {exc}") from exc
            raise
        finally:
            self._release(conn, healthy and not session.broken)

    def tenant(self, tenant_id: UUID | str | None, *, isolation: str | None = None
               ) -> contextlib.AbstractContextManager[Session]:
        """A transaction that sees and writes only ``tenant_id``'s rows. Refuses no tenant."""
        if tenant_id is None or tenant_id == "":
            raise TenantRequired("tenant-scoped work needs a tenant id")
        try:
            tid = tenant_id if isinstance(tenant_id, UUID) else UUID(str(tenant_id))
        except ValueError:
            raise TenantRequired(f"not a tenant id: {tenant_id!r}") from None
        return self._transaction(tid, isolation)

    def system(self, *, isolation: str | None = None) -> contextlib.AbstractContextManager[Session]:
        """A transaction with no tenant: shared tables only; tenant tables show zero rows."""
        return self._transaction(None, isolation)

    @contextlib.contextmanager
    def advisory_lock(self, name: str) -> Iterator[bool]:
        """Try to take the session-level advisory lock ``name`` on a dedicated connection,
        without waiting; yields whether it was taken, and releases it on exit. Held across
        transactions (a retrain holds it while it trains), released if the process dies
        (the server drops the session's locks with its connection)."""
        conn = self._acquire()
        session = Session(conn, None)
        taken = False
        try:
            taken = bool(session.execute(
                "SELECT pg_try_advisory_lock(hashtextextended(:n, 0))", n=name).scalar())
            yield taken
        finally:
            if taken and not session.broken:
                with contextlib.suppress(Exception):
                    session.execute("SELECT pg_advisory_unlock(hashtextextended(:n, 0))", n=name)
            self._release(conn, not session.broken)

    def active_tenants(self) -> list[UUID]:
        """Ids of active tenants (through a SECURITY DEFINER function: ids only)."""
        with self.system() as s:
            return [row[0] for row in s.execute("SELECT active_tenant_ids()").rows]

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.close()


