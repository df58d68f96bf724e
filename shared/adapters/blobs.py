"""Blob storage on GCS with the real ``google-cloud-storage`` client.

Locally the client talks to the emulator named by ``STORAGE_EMULATOR_HOST``. Writes of raw
payloads are content-addressed (the key is the SHA-256 of the bytes), so a retried write
is harmless.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any, Protocol

from shared.errors import TransientError


class BlobStore(Protocol):
    def put(self, bucket: str, key: str, data: bytes, content_type: str = ...) -> str: ...
    def get(self, bucket: str, key: str) -> bytes: ...


def content_key(prefix: str, data: bytes, suffix: str = "") -> str:
    """``prefix/<sha256 of data><suffix>``: the same bytes always land on the same key."""
    return f"{prefix.strip('/')}/{hashlib.sha256(data).hexdigest()}{suffix}"


class GcsBlobStore:
    def __init__(self, project_id: str, *, emulator: bool) -> None:
        self._project = project_id
        self._emulator = emulator
        self._client: Any = None
        self._lock = threading.Lock()

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from google.cloud import storage  # lazy: cold start

                if self._emulator:
                    from google.auth.credentials import AnonymousCredentials

                    self._client = storage.Client(project=self._project, credentials=AnonymousCredentials())
                else:
                    self._client = storage.Client(project=self._project)
            return self._client

    def put(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Upload ``data``; returns ``gs://bucket/key``."""
        from google.api_core import exceptions

        try:
            self.client().bucket(bucket).blob(key).upload_from_string(data, content_type=content_type)
        except (exceptions.ServerError, exceptions.TooManyRequests, ConnectionError) as exc:
            raise TransientError(f"GCS upload to gs://{bucket}/{key} failed: {exc}") from exc
        return f"gs://{bucket}/{key}"

    def get(self, bucket: str, key: str) -> bytes:
        from google.api_core import exceptions

        try:
            return self.client().bucket(bucket).blob(key).download_as_bytes()
        except (exceptions.ServerError, exceptions.TooManyRequests, ConnectionError) as exc:
            raise TransientError(f"GCS download of gs://{bucket}/{key} failed: {exc}") from exc
