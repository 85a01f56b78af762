"""report.html in a real headless Chromium: the plots are in the rendered DOM and the page is drawn.

CI installs Debian's ``chromium`` package; without a chromium binary the test is skipped.
"""

import os
import shutil
import subprocess

import numpy as np
import pytest
from html_structure import svg_bar_counts
from png_pixels import read_rgb
from sample_reports import LAYER_PARITY, sample_report

from verification.release.reports.plots import FAIL, PASS
from verification.release.reports.write import write_reports

CHROMIUM = next((path for name in ("chromium", "chromium-browser") if (path := shutil.which(name))), None)
TIMEOUT_SECONDS = 60

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium binary on PATH (install Debian's `chromium` package to run the browser test)",
)


def _chromium(tmp_path, *arguments) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    result = subprocess.run(
        [CHROMIUM, *flags, *arguments],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, f"chromium exited with {result.returncode}:\n{result.stderr[-2000:]}"
    return result


def _hex_rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])


def _pixels_near(image: np.ndarray, colour: str) -> int:
    return int((np.abs(image.astype(int) - _hex_rgb(colour)).max(axis=2) <= 8).sum())


def test_headless_chromium_renders_the_plots_and_draws_the_page(tmp_path):
    report = sample_report(failing=True, speedup_measured=True)
    url = write_reports(report, tmp_path / "out")["report_html"].resolve().as_uri()

    dom = _chromium(tmp_path, "--dump-dom", url).stdout
    bars = svg_bar_counts(dom)
    assert len(bars) == 5, f"expected 5 plots in the rendered DOM, found {bars}"
    parity = next(n for label, n in bars.items() if label.startswith("Parity per layer"))
    assert parity == len(LAYER_PARITY), bars
    assert "FAILED" in dom and "Not measured" not in dom

    screenshot = tmp_path / "report.png"
    _chromium(tmp_path, f"--screenshot={screenshot}", "--window-size=1200,2400", url)
    image = read_rgb(screenshot)
    assert image.shape == (2400, 1200, 3), image.shape
    colours = len(np.unique(image.reshape(-1, 3)[::7], axis=0))
    assert colours > 50, f"the screenshot looks blank: {colours} distinct colours"
    green, red = _pixels_near(image, PASS), _pixels_near(image, FAIL)
    assert green > 500 and red > 500, f"pass/fail bars not drawn: {green} green and {red} red pixels"
