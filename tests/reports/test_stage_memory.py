"""The stage table's peak RSS: each stage's own peak (not the run's so far), and the run against the
model's weights."""

import resource
import sys
import threading
import time
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


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sampling needs /proc")


def _touched_block(megabytes: int) -> np.ndarray:
    return np.ones(megabytes * MB // 8)  # np.ones writes every page: all of it is resident


def _stage_samplers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "stage-rss-sampler"]


@linux_only
def test_a_small_stage_after_a_large_one_reports_its_own_peak():
    meter = StageMeter()
    with meter.stage("large"):
        block = _touched_block(300)
    del block
    with meter.stage("small"):
        np.ones(10)
    large, small = meter.stages
    assert large["peak_scope"] in ("stage", "sampled") and small["peak_scope"] == "sampled", meter.stages
    # the small stage's peak must not carry the 300 MB the large stage held and freed
    assert large["peak_mb"] - small["peak_mb"] > 250, (
        f"peaks large={large['peak_mb']} MB, small={small['peak_mb']} MB: "
        "the small stage kept the large one's peak"
    )
    memory = meter.memory_section(100 * MB)
    assert memory["peak_mb"] == large["peak_mb"]
    assert memory["weights_fp32_mb"] == 100.0
    assert memory["peak_over_weights"] == pytest.approx(large["peak_mb"] / 100, abs=0.01)


@linux_only
def test_a_block_held_and_freed_within_a_stage_is_in_its_peak():
    meter = StageMeter()
    with meter.stage("before"):
        pass
    with meter.stage("burst"):
        block = _touched_block(310)  # 310, not 300: the peaks are rounded to 0.1 MB
        time.sleep(0.1)  # held across several samples, freed before the stage ends
        del block
    before, burst = meter.stages
    assert burst["peak_mb"] - before["peak_mb"] >= 300, meter.stages


@linux_only
def test_a_stage_never_lowers_the_process_peak():
    # /usr/bin/time -v and getrusage read ru_maxrss: measuring a stage must leave it where it was
    block = _touched_block(300)
    del block
    max_rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    meter = StageMeter()
    with meter.stage("small"):
        np.ones(10)
    max_rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert max_rss_after >= max_rss_before, f"ru_maxrss fell from {max_rss_before} to {max_rss_after} KiB"
    assert meter.stages[0]["peak_mb"] < max_rss_before * 1024 / MB - 250, meter.stages


@linux_only
def test_the_sampling_thread_is_gone_after_the_stage():
    meter = StageMeter()
    with meter.stage("sampled"):
        assert len(_stage_samplers()) == 1
    assert _stage_samplers() == []
    with pytest.raises(ValueError), meter.stage("broken"):
        raise ValueError("boom")
    assert _stage_samplers() == []


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
    ]
    report = _report(stages, {"peak_mb": 1234.4, "weights_fp32_mb": 268.0, "peak_over_weights": 4.61})
    markdown, html = render_markdown(report), unescape(render_html(report))
    for text in (markdown, html):
        assert "peak RSS (MB)" in text and "1234" in text and "987 (so far)" in text, text
        assert "4.61x the model's fp32 weights (268 MB)" in text, text
