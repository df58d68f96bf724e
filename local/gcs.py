"""The GCS emulator (``gcp-storage-emulator``) as a child process on 127.0.0.1."""

from __future__ import annotations

import sys
from pathlib import Path

import requests

from local.processes import ManagedProcess, free_port


class GcsEmulator:
    def __init__(self, log_path: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        bin_dir = Path(sys.executable).parent
        self.process = ManagedProcess(
            "gcs-emulator",
            [str(bin_dir / "gcp-storage-emulator"), "start", "--host", "127.0.0.1",
             "--port", str(self.port), "--in-memory", "--quiet"],
            log_path=log_path,
        )

    @property
    def host(self) -> str:
        """The value for ``STORAGE_EMULATOR_HOST``."""
        return f"http://127.0.0.1:{self.port}"

    def _ready(self) -> bool:
        try:
            return requests.get(f"{self.host}/storage/v1/b", timeout=0.5).status_code < 500
        except requests.RequestException:
            return False

    def start(self, timeout: float = 20.0) -> None:
        self.process.start()
        self.process.wait_ready(self._ready, timeout)

    def stop(self) -> None:
        self.process.stop()
