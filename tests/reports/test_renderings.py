"""report.md, report.html and junit.xml: what they show, that they escape, and that writing is atomic."""

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sample_reports import sample_report

from verification.reports import write as write_module
from verification.reports.render_html import render_html
from verification.reports.render_junit import render_junit
from verification.reports.render_markdown import render_markdown
from verification.reports.write import write_reports


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attributes = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += [value or "" for _, value in attrs]


def _parse(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    return parser


def test_markdown_has_the_verdict_and_a_row_per_check():
    text = render_markdown(sample_report(failing=True))
    assert text.startswith("# ane-verify: FAILED")
    assert "| coreml_parity_psnr_db | class probabilities | 50 | 60 | FAILED |" in text
    assert "| speedup_vs_baseline | latency ratio | no Core ML runtime on Linux | 2 | not measured |" in text
    assert "| layer 1 | 80.0 |" in text and "| linear | 38 | 0 |" in text


def test_junit_counts_failures_and_skips():
    suite = ET.fromstring(render_junit(sample_report(failing=True))).find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "1", "1")
    assert suite.get("time") == "11.00"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["coreml_parity_psnr_db"].find("failure") is not None
    assert cases["speedup_vs_baseline"].find("skipped").get("message") == "no Core ML runtime on Linux"
    assert cases["torch_parity_psnr_db"].find("failure") is None


def test_html_is_self_contained_with_one_plot_per_figure():
    html = render_html(sample_report())
    parsed = _parse(html)
    assert parsed.tags.count("svg") == 3  # parity per layer, op counts, fp16 precision
    assert "script" not in parsed.tags
    external = [
        a for a in parsed.attributes if a.startswith(("http://", "https://")) and "w3.org/2000/svg" not in a
    ]
    assert external == []
    assert "Not measured here: no Core ML runtime on Linux" in html
    assert html.count('class="bar"') == 3 + 2 * 3 + 2  # layers, paired op-count bars, fp16 ops


def test_html_escapes_strings_from_the_report():
    html = render_html(sample_report(model='<script>alert("x")</script> & co'))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html and "&amp; co" in html
    assert "first NaN: none &lt;ok&gt;" in html


def test_reports_without_details_still_render():
    report = sample_report(with_details=False)
    assert "<svg" not in render_html(report)
    assert "## Checks" in render_markdown(report)


def test_write_reports_is_atomic(tmp_path, monkeypatch):
    (tmp_path / "report.md").write_text("older")

    def broken(report):
        raise RuntimeError("planted rendering failure")

    monkeypatch.setattr(write_module, "render_html", broken)
    with pytest.raises(RuntimeError, match="planted"):
        write_reports(sample_report(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]
    assert (tmp_path / "report.md").read_text() == "older"


def test_write_reports_writes_all_four(tmp_path):
    paths = write_reports(sample_report(), tmp_path)
    assert sorted(p.name for p in paths.values()) == ["junit.xml", "report.html", "report.json", "report.md"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "junit.xml",
        "report.html",
        "report.json",
        "report.md",
    ]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (CI installs Debian's chromium)")
def test_a_real_headless_browser_renders_the_plots(tmp_path):
    html_path = write_reports(sample_report(), tmp_path)["report_html"]
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
    url = Path(html_path).resolve().as_uri()
    dom = subprocess.run(
        [CHROMIUM, *flags, "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = _parse(dom.stdout)
    assert rendered.tags.count("svg") == 3 and rendered.tags.count("rect") >= 11, dom.stdout[:500]
    png = tmp_path / "shot.png"
    shot = subprocess.run(
        [CHROMIUM, *flags, f"--screenshot={png}", "--window-size=1000,1600", url],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert shot.returncode == 0 and png.is_file(), shot.stderr[-2000:]
    assert _distinct_colours(png) > 20, "the screenshot is blank"


def _distinct_colours(png: Path) -> int:
    """Decode an 8-bit RGB(A) PNG with the standard library and count distinct pixel colours."""
    import struct
    import zlib

    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks, header = 8, [], None
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        payload = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", payload)
        elif kind == b"IDAT":
            chunks.append(payload)
        offset += 12 + length
    width, height, depth, colour_type = header[:4]
    assert depth == 8 and colour_type in (2, 6), header
    channels = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    colours, previous = set(), bytearray(stride)
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, upper_left = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - upper_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - upper_left)
                predictor = left if pa <= pb and pa <= pc else (up if pb <= pc else upper_left)
                line[i] = (line[i] + predictor) & 0xFF
        if row % 8 == 0:
            colours.update(bytes(line[i : i + 3]) for i in range(0, stride, channels * 4))
        previous = line
    return len(colours)
