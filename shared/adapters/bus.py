"""Publishing to Pub/Sub with the real ``google-cloud-pubsub`` client.

Locally the client finds the emulator through ``PUBSUB_EMULATOR_HOST`` by itself; in GCP it
uses the function's service account. The client is created on first use, not at import.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

from shared.contracts import Message, encode
from shared.errors import PublishFailed

logger = logging.getLogger(__name__)


class Bus(Protocol):
    """The publishing port the services ask for."""

    def publish(self, message: Message) -> str: ...
    def publish_raw(self, topic: str, data: bytes, attributes: dict[str, str]) -> str: ...
    def publish_many(self, messages: list[Message]) -> list[str]: ...
    def warm(self) -> None: ...


class PubSubBus:
    """:class:`Bus` on Google Cloud Pub/Sub (or its emulator)."""

    def __init__(self, project_id: str, *, timeout: float = 30.0) -> None:
        self._project = project_id
        self._timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()

    def _publisher(self) -> Any:
        with self._lock:
            if self._client is None:
                from google.cloud import pubsub_v1  # lazy: keeps cold start small

                self._client = pubsub_v1.PublisherClient()
            return self._client

    def warm(self) -> None:
        """Import the client library and build the publisher now (a few hundred
        milliseconds) rather than on the first publish."""
        self._publisher()

    def topic_path(self, topic: str) -> str:
        return f"projects/{self._project}/topics/{topic}"

    def publish(self, message: Message) -> str:
        data, attributes = encode(message)
        return self.publish_raw(message.topic, data, attributes)

    def publish_many(self, messages: list[Message]) -> list[str]:
        """Publish every message, then wait for all of them (the client batches them);
        raises :class:`PublishFailed` if any failed (the caller's outbox retries those
        not confirmed). Message ids in order."""
        futures = []
        try:
            client = self._publisher()
            for message in messages:
                data, attributes = encode(message)
                futures.append(client.publish(self.topic_path(message.topic), data,
                                              **attributes))
            return [f.result(timeout=self._timeout) for f in futures]
        except Exception as exc:  # api_core raises a zoo of types for network trouble
            raise PublishFailed(f"publishing {len(messages)} messages failed: {exc}") from exc

    def publish_raw(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        try:
            future = self._publisher().publish(self.topic_path(topic), data, **attributes)
            message_id = future.result(timeout=self._timeout)
        except Exception as exc:  # api_core raises a zoo of types for network trouble
            raise PublishFailed(f"publish to {topic} failed: {exc}") from exc
        logger.debug("published to %s", topic, extra={"message_id": message_id})
        return message_id
