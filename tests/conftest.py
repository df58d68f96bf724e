"""Fixtures shared by every test layer: seeded randomness and the embedded PostgreSQL."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
KIT_FIXTURES = REPO_ROOT.parent / "shared" / "fixtures"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A fresh, migrated PostgreSQL 16 (embedded, or the server in $DATABASE_URL)."""
    from local.postgres import start_database

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    database, server = start_database(tmp_path_factory.mktemp("pg") / "data", fresh=True)
    yield database
    if server is not None:
        server.stop()


@pytest.fixture(scope="session")
def app_db(pg):
    """The functions' role: RLS applies."""
    from shared.adapters.db import Database, DirectConnector

    db = Database(DirectConnector(pg.app))
    yield db
    db.close()


@pytest.fixture(scope="session")
def owner_db(pg):
    from shared.adapters.db import Database, DirectConnector

    db = Database(DirectConnector(pg.owner))
    yield db
    db.close()


@pytest.fixture
def make_tenant(owner_db):
    """Provision a tenant (as an operator would) and return its id."""

    def make(name: str = "tenant") -> uuid.UUID:
        tenant_id = uuid.uuid4()
        with owner_db.system() as s:
            s.execute("SELECT provision_tenant(:t, :n)", t=tenant_id, n=name)
        return tenant_id

    return make
