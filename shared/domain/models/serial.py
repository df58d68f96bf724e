"""The JSON envelope every model artifact uses: ``{"format": "<tag>/<n>", ...}``."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["read_payload"]


def read_payload(data: bytes, serial_format: str, what: str) -> dict[str, Any]:
    """The payload of an artifact, checked to carry ``serial_format``.

    Raises
    ------
    ValueError
        Not UTF-8 JSON, not an object, or another format (``what`` names the model in the
        message, e.g. ``"direction model"``).
    """
    try:
        payload = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a {what} payload: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != serial_format:
        raise ValueError(f"not a {serial_format} payload")
    return payload
