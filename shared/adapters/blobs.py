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


class UrlBlobReader:
    """Reads objects through the GCS JSON API with the standard library only: for serving
    paths where the cold start matters (``google.cloud.storage`` costs about 0.5 s to
    import). ``get`` only; writes go through :class:`GcsBlobStore`.

    In Cloud Run / Cloud Functions the access token comes from the metadata server (cached
    until shortly before it expires); with ``emulator_host`` (``STORAGE_EMULATOR_HOST``)
    requests go to the emulator without a token.
    """

    _METADATA_TOKEN = ("http://metadata.google.internal/computeMetadata/v1/instance/"
                       "service-accounts/default/token")

    def __init__(self, *, emulator_host: str | None, timeout: float = 10.0) -> None:
        self._base = (emulator_host.rstrip("/") if emulator_host
                      else "https://storage.googleapis.com")
        self._emulator = emulator_host is not None
        self._timeout = timeout
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def _bearer(self) -> dict[str, str]:
        import json
        import time
        import urllib.request

        if self._emulator:
            return {}
        with self._lock:
            if self._token is None or self._token[1] - 60 < time.monotonic():
                req = urllib.request.Request(self._METADATA_TOKEN,
                                             headers={"Metadata-Flavor": "Google"})
                with urllib.request.urlopen(req, timeout=self._timeout) as resp:  # noqa: S310
                    body = json.loads(resp.read())
                self._token = (body["access_token"], time.monotonic() + body["expires_in"])
            return {"Authorization": f"Bearer {self._token[0]}"}

    def get(self, bucket: str, key: str) -> bytes:
        import urllib.error
        import urllib.parse
        import urllib.request

        url = (f"{self._base}/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/o/"
               f"{urllib.parse.quote(key, safe='')}?alt=media")
        try:
            req = urllib.request.Request(url, headers=self._bearer())
            with urllib.request.urlopen(req, timeout=self._timeout) as resp:  # noqa: S310
                return resp.read()
        except urllib.error.HTTPError as exc:
            if exc.code in (429,) or exc.code >= 500:
                raise TransientError(f"GCS read of gs://{bucket}/{key}: HTTP {exc.code}") from exc
            raise FileNotFoundError(f"gs://{bucket}/{key}: HTTP {exc.code}") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise TransientError(f"GCS read of gs://{bucket}/{key} failed: {exc}") from exc

    def put(self, bucket: str, key: str, data: bytes, content_type: str = "") -> str:
        raise NotImplementedError("UrlBlobReader reads only; write with GcsBlobStore")
