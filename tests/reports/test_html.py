"""report.html: self-contained, escaped, well nested, and with a titled, labelled plot per figure."""

import re

import pytest
from html_structure import Page, svg_bar_counts
from sample_reports import (
    DETAIL_KEYS,
    FP16_PRECISION,
    HOSTILE,
    LAYER_PARITY,
    OP_COUNTS,
    TIMINGS,
    sample_report,
)

from verification.release.reports.plots import FAIL, PASS, _ticks
from verification.release.reports.render_html import render_html

PLOT_TITLES = {
    "layer_parity": "Parity per layer",
    "op_counts": "Op counts, baseline vs optimized",
    "fp16_precision": "fp16 precision loss per op",
}


def _svg_titles(html: str) -> list[str]:
    return list(svg_bar_counts(html))


def test_the_page_is_self_contained():
    html = render_html(sample_report(speedup_measured=True))
    page = Page(html)
    assert not re.search(r"https?://", html), re.findall(r".{40}https?://.{40}", html)
    assert page.tags("script") == [] and page.tags("link") == [] and page.tags("img") == []
    assert [attrs for _, attrs in page.elements if "src" in attrs or "href" in attrs] == []
    assert "url(" not in html and "@import" not in html


def test_the_page_nests_properly():
    page = Page(render_html(sample_report(failing=True, speedup_measured=True)))
    assert page.nesting_errors == [] and page.open == [], (page.nesting_errors, page.open)


def test_the_verdict_comes_first():
    failed = Page(render_html(sample_report(failing=True)))
    verdict = failed.all_text().split("Configuration")[0]
    assert "FAILED" in verdict and "4 checks: 2 passed, 1 failed, 1 not measured" in verdict
    assert "PASSED" in Page(render_html(sample_report())).all_text().split("Configuration")[0]


def test_each_plot_is_titled_accessible_and_labelled():
    html = render_html(sample_report(speedup_measured=True))
    for svg in re.findall(r"<svg.*?</svg>", html, flags=re.S):
        opening = svg[: svg.index(">") + 1]
        assert 'role="img"' in opening and 'aria-label="' in opening, opening
        assert svg[len(opening) :].startswith("<title>"), svg[:200]
        assert 'class="axis-label"' in svg and 'class="tick"' in svg and 'class="value"' in svg, svg[:300]


def test_one_plot_per_figure_with_a_bar_per_value():
    counts = svg_bar_counts(render_html(sample_report(speedup_measured=True)))
    op_types = set(OP_COUNTS["baseline"]) | set(OP_COUNTS["optimized"])
    expected = {
        "Parity per layer": len(LAYER_PARITY),
        "Op counts, baseline vs optimized": 2 * len(op_types),
        "fp16 precision loss per op": len(FP16_PRECISION),
        "Speed-up per check": 2,
        "Median latency per configuration": len(TIMINGS),
    }
    found = {prefix: n for prefix in expected for label, n in counts.items() if label.startswith(prefix)}
    assert found == expected and len(counts) == len(expected), counts


def test_bars_are_coloured_by_verdict_and_the_threshold_is_drawn():
    html = render_html(sample_report())
    parity = re.search(r'<svg[^>]*aria-label="Parity per layer.*?</svg>', html, flags=re.S).group(0)
    fills = re.findall(r'<rect class="bar"[^>]*fill="([^"]+)"', parity)
    assert fills == [PASS, PASS, FAIL, PASS]  # 95.7, 128.4, 80 (below 90), inf
    assert 'class="threshold"' in parity and "threshold 90" in parity
    assert ">inf</text>" in parity  # the non-finite value is labelled, not dropped


# The ids are not the bare keys: the project's plugin skips any test with a "speedup" keyword off macOS.
@pytest.mark.parametrize("key", DETAIL_KEYS, ids=[f"only-{key}" for key in DETAIL_KEYS])
def test_a_section_appears_only_with_its_details_key(key):
    headings = {
        "layer_parity": "Parity per layer",
        "op_counts": "Op counts",
        "fp16_precision": "fp16 precision loss per op",
        "speedup": "Speed-up",
        "stages": "Stage timings",
        "hazards_text": "fp16 hazards",
        "readiness": "ANE readiness (static estimate)",
    }
    html = render_html(sample_report(details=(key,)))
    present = {k for k, heading in headings.items() if f"<h2>{heading}</h2>" in html}
    assert present == {key}
    expected_svgs = 1 if key in PLOT_TITLES else 0
    assert len(_svg_titles(html)) == expected_svgs


def test_without_details_there_are_no_plots():
    html = render_html(sample_report(details=()))
    assert "<svg" not in html and "<h2>Checks</h2>" in html


def test_speedup_not_measured_is_a_visible_panel_not_a_plot():
    html = render_html(sample_report(details=("speedup",)))
    assert (
        '<p class="not-measured-panel"><strong>Not measured here:</strong> no Core ML runtime on Linux</p>'
        in html
    )
    assert "<svg" not in html


def test_checks_not_measured_show_their_reason_and_never_pass():
    page = Page(render_html(sample_report(strict=False)))
    rows = re.findall(r'<tr class="([^"]+)">(.*?)</tr>', render_html(sample_report()), flags=re.S)
    speedup = next(cells for cls, cells in rows if "speedup_vs_baseline" in cells)
    assert "no Core ML runtime on Linux" in speedup and "not measured" in speedup
    assert ("not-measured", speedup) in rows
    assert "passed" not in speedup
    assert page.nesting_errors == []


def test_strict_mode_shows_an_unmeasured_check_as_failed():
    html = render_html(sample_report(strict=True))
    assert "FAILED (strict: not measured)" in html and '<span class="verdict failed">FAILED</span>' in html


def test_every_string_from_the_report_is_escaped():
    report = sample_report(
        model=HOSTILE,
        checks=[
            {
                "name": HOSTILE,
                "metric": HOSTILE,
                "value": None,
                "threshold": 1.0,
                "passed": None,
                "measured": False,
                "reason": HOSTILE,
            }
        ],
        artifacts={HOSTILE: f"/tmp/{HOSTILE}/model.mlpackage"},
    )
    report["details"]["layer_parity"] = [{"layer": HOSTILE, "psnr_db": 10.0}]
    report["details"]["hazards_text"] = HOSTILE
    report["details"]["speedup"]["reason"] = HOSTILE
    html = render_html(report)
    page = Page(html)
    assert page.tags("script") == [] and page.tags("b") == []
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert page.all_text().count(HOSTILE) >= 6  # title, h1, check name, metric, reason, hazards, ...
    assert page.nesting_errors == []


@pytest.mark.parametrize(
    "readiness, expected_rows",
    [
        (
            {"rows": [{"metric": "ops", "baseline": 158, "optimized": 401, "ratio": 0.39}]},
            [["ops", "158", "401", "0.39"]],
        ),
        (
            {
                "baseline": {"ops": 158, "label": "baseline"},
                "optimized": {"ops": 401},
                "ratios": {"ops": 0.39},
            },
            [["ops", "158", "401", "0.39"]],
        ),
        (
            {
                "optimized": {"ops": 401, "op_counts": {"conv": 3}, "peak_at_op": None},
                "baseline": None,
                "reason": "no baseline",
            },
            [["ops", "-", "401", "-"]],
        ),
    ],
    ids=["comparison rows", "side by side with ratios", "optimized only"],
)
def test_readiness_is_a_side_by_side_static_estimate(readiness, expected_rows):
    report = sample_report(details=("readiness",))
    report["details"]["readiness"] = readiness
    html = render_html(report)
    section = html.split("<h2>ANE readiness (static estimate)</h2>")[1].split("<h2>")[0]
    assert "static estimate" in section
    rows = [
        re.findall(r"<td>(.*?)</td>", row)
        for row in re.findall(r"<tbody>(.*?)</tbody>", section)[0].split("</tr>")
        if row
    ]
    assert rows == expected_rows
    if readiness.get("reason"):
        assert "No baseline figures: no baseline" in section


def test_environment_shows_the_fingerprint_and_the_versions():
    text = Page(render_html(sample_report())).all_text()
    assert "Linux 6.1" in text and "x86_64" in text
    assert "coremltools9.0" in text and "python3.11.2" in text


@pytest.mark.parametrize(
    "top, expected", [(128.4, [0, 50, 100, 150]), (4.0, [0, 1, 2, 3, 4]), (72, [0, 20, 40, 60, 80])]
)
def test_axis_ticks_are_round_numbers_covering_the_values(top, expected):
    assert _ticks(top) == pytest.approx(expected)
