"""The session report in headless Chromium: every image decodes and the page is not blank.

Needs Chromium (``apt-get install -y chromium``, or ``$QS_CHROMIUM``). Without it the test
fails, saying how to install it, unless ``QS_SKIP_BROWSER=1`` (then it is skipped).
"""

from __future__ import annotations

import html
import os

import numpy as np
import pytest
from PIL import Image

from local.browser import INSTALL_HINT, find_chromium, render
from shared.report.html import SECTIONS, write_report
from tests.report_builders import build_session_report, empty_session_report

pytestmark = pytest.mark.integration

WIDTH, HEIGHT = 1280, 2400


def _chromium() -> str:
    """The binary; fails the test (a failure, not a setup error) when there is none."""
    found = find_chromium()
    if found is None:
        if os.environ.get("QS_SKIP_BROWSER") == "1":
            pytest.skip("QS_SKIP_BROWSER=1: no Chromium, headless report test skipped")
        pytest.fail(f"{INSTALL_HINT}; or set QS_SKIP_BROWSER=1 to skip this test",
                    pytrace=False)
    return found


def _pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.size == (WIDTH, HEIGHT)
        return np.asarray(im.convert("RGB"), dtype=np.float64)


def test_report_renders_in_headless_chromium(tmp_path):
    chromium = _chromium()
    page = write_report(build_session_report(), tmp_path / "report.html")
    images = page.read_text(encoding="utf-8").count("<img ")
    assert images == 13

    result = render(page, tmp_path / "report.png", width=WIDTH, height=HEIGHT, timeout=90,
                    chromium=chromium)

    assert result.rendered == (images, images), (
        f"images decoded in Chromium: {result.rendered} (expected {images}/{images})\n"
        f"{result.log[-1500:]}")
    for _, heading in SECTIONS:  # the DOM after load still has every section
        assert f"<h2>{html.escape(heading)}</h2>" in result.dom
    px = _pixels(result.png_path)
    assert px.std() > 25, f"screenshot looks blank (pixel std {px.std():.1f})"
    # the header band (navy) and the plots' green and red reached the screen
    assert np.allclose(px[20, 20], (0x1F, 0x3B, 0x73), atol=8)
    greenish = (px[..., 1] > px[..., 0] + 40) & (px[..., 1] > px[..., 2] + 20)
    reddish = (px[..., 0] > px[..., 1] + 60) & (px[..., 0] > px[..., 2] + 40)
    assert greenish.sum() > 500 and reddish.sum() > 500


def test_empty_report_renders_in_headless_chromium(tmp_path):
    chromium = _chromium()
    page = write_report(empty_session_report(), tmp_path / "empty.html")
    result = render(page, tmp_path / "empty.png", width=WIDTH, height=HEIGHT,
                    chromium=chromium)
    assert result.rendered == (0, 0)
    assert result.dom.count("nothing to show: ") >= len(SECTIONS)
    assert _pixels(result.png_path).std() > 5


def test_find_chromium_prefers_qs_chromium(tmp_path, monkeypatch):
    fake = tmp_path / "my-chromium"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("QS_CHROMIUM", str(fake))
    assert find_chromium() == str(fake)
    monkeypatch.setenv("QS_CHROMIUM", str(tmp_path / "missing"))
    assert find_chromium() != str(tmp_path / "missing")  # ignored: the usual search runs


def test_render_without_a_page_or_binary(tmp_path):
    with pytest.raises(FileNotFoundError, match="no page"):
        render(tmp_path / "missing.html", tmp_path / "x.png", chromium="/bin/true")
    page = write_report(empty_session_report(), tmp_path / "empty.html")
    with pytest.raises(RuntimeError, match="no screenshot"):
        render(page, tmp_path / "x.png", chromium="/bin/true")  # exits 0, writes nothing
