"""The local cloud, started once per test session: every function, emulators, Postgres.

Pushes are delivered three times each (at-least-once, exaggerated) and retried fast, so
idempotency and dead-lettering are exercised by every test that publishes.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from local.cloud import CloudConfig, LocalCloud
from shared.topology import RetryPolicy

FAST_RETRY = RetryPolicy(minimum_backoff=timedelta(milliseconds=50),
                         maximum_backoff=timedelta(milliseconds=200), max_delivery_attempts=5)


@pytest.fixture(scope="session")
def cloud(tmp_path_factory):
    from tests.integration.cloud_support import SESSION_SIGNING_KEY

    # notify's webhook channel, for tests that watch a signal arrive (cloud_support's receiver)
    config = CloudConfig(state_dir=tmp_path_factory.mktemp("cloud"), fresh=True, retry=FAST_RETRY,
                         duplicate_deliveries=3,
                         extra_env={"QS_WEBHOOK_SIGNING_KEY": SESSION_SIGNING_KEY,
                                    "QS_WEBHOOK_ALLOW_PRIVATE": "true"})
    with LocalCloud(config) as running:
        yield running
