"""The stage table's peak RSS: each stage's own peak (not the run's so far), and the run against the
model's weights."""

import sys
from html import unescape

import numpy as np
import pytest
import torch
from sample_reports import CREATED, SOURCE, TOOL

from verification.release.reports.render_html import render_html
from verification.release.reports.render_markdown import render_markdown
from verification.release.reports.schema import seal
from verification.release.resources import StageMeter, fp32_weight_bytes

MB = 10**6


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="a stage's own peak needs /proc/self/clear_refs"
)
def test_a_small_stage_after_a_large_one_reports_its_own_peak():
    meter = StageMeter()
    with meter.stage("large"):
        block = np.ones(300 * MB // 8)  # 300 MB, touched
        block[::512] = 2.0
    del block
    with meter.stage("small"):
        np.ones(10)
    large, small = meter.stages
    assert large["peak_scope"] == small["peak_scope"] == "stage", meter.stages
    # the small stage's peak must not carry the 300 MB the large stage held and freed
    assert large["peak_mb"] - small["peak_mb"] > 250, (
        f"peaks large={large['peak_mb']} MB, small={small['peak_mb']} MB: "
        "the small stage kept the large one's peak"
    )
    memory = meter.memory_section(100 * MB)
    assert memory["peak_mb"] == large["peak_mb"]
    assert memory["weights_fp32_mb"] == 100.0
    assert memory["peak_over_weights"] == pytest.approx(large["peak_mb"] / 100, abs=0.01)


def test_a_stage_that_raises_is_still_measured():
    meter = StageMeter()
    with pytest.raises(ValueError), meter.stage("broken"):
        raise ValueError("boom")
    assert [s["name"] for s in meter.stages] == ["broken"] and meter.stages[0]["peak_mb"] > 0


def test_weights_are_counted_once_as_fp32():
    shared = torch.nn.Linear(10, 20)  # 200 weights + 20 biases
    model = torch.nn.Sequential(shared, shared, torch.nn.Embedding(5, 4).half())  # 20 half weights
    assert fp32_weight_bytes(model) == (200 + 20 + 20) * 4
    assert fp32_weight_bytes(model, shared, None) == (200 + 20 + 20) * 4


def _report(stages, memory):
    return seal(
        {
            "schema_version": 1,
            "tool": TOOL,
            "created": CREATED,
            "model": "m",
            "config": {},
            "environment": {},
            "source": SOURCE,
            "checks": [],
            "artifacts": {},
            "details": {"stages": stages, "memory": memory},
        }
    )


def test_the_reports_show_each_stage_peak_and_the_ratio_to_the_weights():
    stages = [
        {"name": "convert", "seconds": 10.5, "peak_mb": 1234.4, "peak_scope": "stage"},
        {"name": "gate", "seconds": 0.25, "peak_mb": 987.0, "peak_scope": "process"},
        {"name": "convert two", "seconds": 3.0, "peak_mb": 2222.0, "peak_scope": "process tree"},
    ]
    report = _report(stages, {"peak_mb": 1234.4, "weights_fp32_mb": 268.0, "peak_over_weights": 4.61})
    markdown, html = render_markdown(report), unescape(render_html(report))
    for text in (markdown, html):
        assert "peak RSS (MB)" in text and "1234" in text and "987 (so far)" in text, text
        assert "2222 (with children)" in text, text
        assert "4.61x the model's fp32 weights (268 MB)" in text, text


def test_a_stage_that_ran_children_takes_the_process_trees_peak_where_larger():
    meter = StageMeter()
    with meter.stage("convert"):
        pass
    own = meter.stages[-1]["peak_mb"]
    meter.include_children(own + 500.0)
    stage = meter.stages[-1]
    assert stage["peak_mb"] == round(own + 500.0, 1) and stage["own_peak_mb"] == own, stage
    assert stage["peak_scope"] == "process tree"
    assert meter.memory_section(10**8)["peak_mb"] == stage["peak_mb"]
