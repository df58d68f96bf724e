"""Headless Chromium: find it, open a local page, take a screenshot and dump the DOM.

Used by the report test (``tests/integration/test_report_chromium.py``) and to make the
README's screenshot::

    python -m local.browser report.html docs/report.png --width 1280 --height 2000

Chromium runs as two one-shot subprocesses (``--screenshot`` and ``--dump-dom``, in
parallel), each with a fresh temporary profile and no network chatter (no first-run, sync,
component updates or background networking), in its own process group, killed whole on
timeout. Nothing is installed here: on Debian/Ubuntu, ``apt-get install -y chromium``
(:data:`INSTALL_HINT`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CANDIDATES", "INSTALL_HINT", "RenderResult", "find_chromium", "render"]

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
              "/usr/bin/chromium")
"""Looked up in this order (on ``PATH``, or as a path) after ``$QS_CHROMIUM``."""
INSTALL_HINT = ("Chromium not found: install it (Debian/Ubuntu, as root: "
                "`apt-get update && apt-get install -y chromium`; macOS: "
                "`brew install --cask chromium`) or set QS_CHROMIUM to a Chromium or Chrome "
                "binary")
"""What to do when :func:`find_chromium` finds nothing."""
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--mute-audio", "--disable-extensions")
"""Every run's flags (``--user-data-dir`` is added, fresh, per run)."""
_RENDERED = re.compile(r'data-rendered="(\d+)/(\d+)"')


def find_chromium() -> str | None:
    """The Chromium (or Chrome) binary to use, or ``None`` when there is none.

    ``$QS_CHROMIUM`` first (a path or a name on ``PATH``; ignored if it names nothing
    executable), then :data:`CANDIDATES` in order.
    """
    wanted = os.environ.get("QS_CHROMIUM", "").strip()
    for name in ((wanted,) if wanted else ()) + CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass(frozen=True, slots=True)
class RenderResult:
    """What a headless render produced.

    Attributes
    ----------
    chromium : str
        The binary used.
    png_path : pathlib.Path
        The screenshot (``width x height`` pixels).
    dom : str
        The DOM serialised after the page's ``load`` (``--dump-dom``).
    width, height : int
        The window size asked for, pixels.
    seconds : float
        Wall time of both runs (they run in parallel), seconds.
    log : str
        Chromium's stderr of both runs (diagnostics only).
    """

    chromium: str
    png_path: Path
    dom: str
    width: int
    height: int
    seconds: float
    log: str

    @property
    def rendered(self) -> tuple[int, int] | None:
        """``(images decoded, images)`` from the page's ``<body data-rendered="ok/total">``
        (set by the report's load script), or ``None`` when the DOM does not say."""
        m = _RENDERED.search(self.dom)
        return (int(m.group(1)), int(m.group(2))) if m else None


def _start(argv: Sequence[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill the process group this module started (Chromium's helpers included)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        proc.communicate(timeout=5)


def render(html_path: str | Path, png_path: str | Path, *, width: int = 1280,
           height: int = 2000, timeout: float = 60.0, chromium: str | None = None,
           extra_args: Sequence[str] = ()) -> RenderResult:
    """Open a local HTML file in headless Chromium: screenshot it and dump its DOM.

    Parameters
    ----------
    html_path : str or Path
        The page (opened as a ``file://`` URL).
    png_path : str or Path
        Where the screenshot is written (parent directories are created).
    width, height : int
        Window size, pixels; the screenshot is the top ``width x height`` of the page.
    timeout : float
        Seconds each Chromium run may take before its process group is killed.
    chromium : str, optional
        The binary; default :func:`find_chromium`.
    extra_args : sequence of str
        More Chromium flags (e.g. ``--virtual-time-budget=5000``).

    Returns
    -------
    RenderResult

    Raises
    ------
    FileNotFoundError
        No Chromium (the message is :data:`INSTALL_HINT`) or no page.
    TimeoutError
        A run took longer than ``timeout``.
    RuntimeError
        Chromium failed, or wrote no screenshot.
    """
    binary = chromium or find_chromium()
    if binary is None:
        raise FileNotFoundError(INSTALL_HINT)
    page = Path(html_path).resolve()
    if not page.is_file():
        raise FileNotFoundError(f"no page at {page}")
    png = Path(png_path).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    url = page.as_uri()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="qs-chromium-") as tmp:
        common = [binary, *FLAGS, *extra_args]
        shot = _start([*common, f"--user-data-dir={tmp}/shot", f"--screenshot={png}",
                       f"--window-size={width},{height}", url])
        dump = _start([*common, f"--user-data-dir={tmp}/dom", "--dump-dom",
                       f"--window-size={width},{height}", url])
        outputs: list[tuple[bytes, bytes, int]] = []
        try:
            for proc in (shot, dump):
                left = max(0.1, timeout - (time.monotonic() - start))
                try:
                    out, err = proc.communicate(timeout=left)
                except subprocess.TimeoutExpired as e:
                    raise TimeoutError(f"{binary} took over {timeout:g} s on {url}") from e
                outputs.append((out, err, proc.returncode))
        finally:
            for proc in (shot, dump):
                if proc.poll() is None:
                    _kill(proc)
    seconds = time.monotonic() - start
    log = "\n".join(err.decode("utf-8", "replace") for _, err, _ in outputs)
    for (_, _, rc), what in zip(outputs, ("screenshot", "dump-dom"), strict=True):
        if rc != 0:
            raise RuntimeError(f"{binary} --{what} exited {rc}:\n{log[-2000:]}")
    if not png.is_file() or png.stat().st_size == 0:
        raise RuntimeError(f"{binary} wrote no screenshot at {png}:\n{log[-2000:]}")
    return RenderResult(chromium=binary, png_path=png,
                        dom=outputs[1][0].decode("utf-8", "replace"), width=width,
                        height=height, seconds=seconds, log=log)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.browser",
                                     description="Screenshot a local HTML page with "
                                                 "headless Chromium.")
    parser.add_argument("html")
    parser.add_argument("png")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    try:
        result = render(args.html, args.png, width=args.width, height=args.height,
                        timeout=args.timeout)
    except (FileNotFoundError, TimeoutError, RuntimeError) as e:
        print(e, file=sys.stderr)
        return 1
    done = result.rendered
    print(f"{result.png_path} ({result.width}x{result.height}, {result.seconds:.1f} s"
          + (f", images {done[0]}/{done[1]}" if done else "") + ")")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
