"""Versioned SQL migrations, applied idempotently and recorded in ``schema_migrations``.

Files are ``shared/migrations/NNNN_name.sql``. Each runs in its own transaction under an
advisory lock (so two deploys cannot race), and its SHA-256 is recorded: editing a file
that was already applied is an error, not a silent drift. Run them as the owner role.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from shared.adapters.db import ConnectionFactory

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
_LOCK_KEY = 7_215_004_211  # pg_advisory_lock key reserved for migrations


class MigrationError(RuntimeError):
    """A migration file is malformed, was edited after being applied, or failed."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """Read and order the migration files; versions must be unique and contiguous."""
    root = directory or Path(str(resources.files("shared") / "migrations"))
    migrations = []
    for path in sorted(root.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_snake_name.sql")
        migrations.append(Migration(int(match["version"]), match["name"], path.read_text()))
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise MigrationError(f"migration versions must be 1..N without gaps, found {versions}")
    return migrations


def apply_migrations(factory: ConnectionFactory, directory: Path | None = None) -> list[Migration]:
    """Apply every pending migration; returns those applied now (empty when up to date)."""
    migrations = load_migrations(directory)
    conn = factory()
    applied_now: list[Migration] = []
    try:
        conn.execute_simple(f"SELECT pg_advisory_lock({_LOCK_KEY})")
        conn.execute_simple(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {
            row[0]: row[1]
            for row in conn.execute_unnamed("SELECT version, checksum FROM schema_migrations").rows
        }
        for migration in migrations:
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} was changed after it "
                        "was applied; add a new migration instead of editing an applied one"
                    )
                continue
            logger.info("applying migration %04d_%s", migration.version, migration.name)
            conn.execute_simple("BEGIN")
            try:
                conn.execute_simple(migration.sql)
                conn.execute_unnamed(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    vals=(migration.version, migration.name, migration.checksum),
                )
            except Exception as exc:
                conn.execute_simple("ROLLBACK")
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name} failed: {exc}"
                ) from exc
            conn.execute_simple("COMMIT")
            applied_now.append(migration)
        return applied_now
    finally:
        try:
            conn.execute_simple(f"SELECT pg_advisory_unlock({_LOCK_KEY})")
        finally:
            conn.close()
