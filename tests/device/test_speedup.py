"""Timing statistics and speed-up gates with fake clocks and predictors; the real thing on a Mac."""

from __future__ import annotations

import json
import math
import platform

import pytest
from recorded_devices import recorded

from verification import thresholds
from verification.checks import CheckFailed, enforce
from verification.device import NotAvailableHere, detect
from verification.speedup import (
    STRICT_ENV,
    SpeedupNotMeasured,
    TimingStats,
    measure,
    median,
    median_relative_ci,
    p90,
    speedup_checks,
    time_calls,
)


class FakeClock:
    """A clock that advances only when the fake model predicts, by the next of ``durations_ms``."""

    def __init__(self, durations_ms):
        self.now = 0.0
        self.durations = list(durations_ms)
        self.calls = 0

    def __call__(self):
        return self.now

    def predict(self, _inputs=None):
        self.now += self.durations[self.calls % len(self.durations)] / 1e3
        self.calls += 1


def test_order_statistics_by_hand():
    assert median([5, 1, 4, 2, 3]) == 3 and median([4, 1, 3, 2]) == 2.5
    assert p90(list(range(1, 11))) == 9 and p90(list(range(1, 21))) == 18 and p90([7]) == 7
    # n = 16: ranks floor(8 - 3.92) = 4 and ceil(8 + 3.92) = 12 -> samples 4 and 12 around a median of 8.5
    assert median_relative_ci(list(range(1, 17))) == pytest.approx((12 - 4) / 2 / 8.5)
    assert median_relative_ci([3.0] * 50) == 0 and median_relative_ci([1.0] * 5) == math.inf


def test_steady_latency_stops_at_min_runs_after_warmup():
    clock = FakeClock([2.0])
    stats = time_calls(clock.predict, clock=clock, warmup=4, min_runs=20)
    assert (stats.runs, stats.warmup, clock.calls) == (20, 4, 24)
    assert stats.median_ms == pytest.approx(2.0) and stats.p90_ms == pytest.approx(2.0)
    assert stats.stable and stats.rel_ci == pytest.approx(0, abs=1e-9)


def test_warmup_is_not_timed():
    clock = FakeClock([1000.0] * 3 + [2.0] * 10_000)  # three slow first calls
    stats = time_calls(clock.predict, clock=clock, warmup=3, min_runs=10)
    assert stats.median_ms == pytest.approx(2.0) and max(stats.p90_ms, stats.median_ms) < 3


def test_noisy_latency_runs_until_max_runs_and_reports_unstable():
    clock = FakeClock([1.0, 3.0])
    stats = time_calls(clock.predict, clock=clock, warmup=0, min_runs=10, max_runs=40, target_rel_ci=0.02)
    assert stats.runs == 40 and not stats.stable and stats.rel_ci == pytest.approx(0.5)
    assert stats.median_ms == pytest.approx(2.0) and stats.p90_ms == pytest.approx(3.0)


def test_noisy_latency_stops_at_the_time_budget():
    clock = FakeClock([1.0, 3.0])
    stats = time_calls(clock.predict, clock=clock, warmup=0, min_runs=10, max_runs=10_000, time_budget_s=0.2)
    assert 95 <= stats.runs <= 105 and not stats.stable  # about 0.2 s / 2 ms per call


def test_bad_run_counts_are_refused_with_the_numbers():
    with pytest.raises(ValueError, match="min_runs=3"):
        time_calls(lambda: None, min_runs=3)


def test_measure_records_load_time_and_compute_units():
    clock = FakeClock([5.0])
    loaded = []

    class FakeModel:
        def predict(self, inputs):
            assert inputs == {"x": 1}
            clock.predict()

    def loader(path, compute_units):
        loaded.append((path, compute_units))
        clock.now += 1.5  # compiling the package
        return FakeModel()

    stats = measure("m.mlpackage", {"x": 1}, "CPU_AND_NE", loader=loader, clock=clock, warmup=2, min_runs=8)
    assert loaded == [("m.mlpackage", "CPU_AND_NE")]
    assert stats.load_seconds == pytest.approx(1.5) and stats.compute_units == "CPU_AND_NE"
    assert stats.median_ms == pytest.approx(5.0) and stats.runs == 8


@pytest.mark.skipif(platform.system() == "Darwin", reason="checks the answer where Core ML cannot run")
def test_timing_without_core_ml_is_not_available_here():
    with pytest.raises(NotAvailableHere, match="not available here.*needs macOS"):
        measure("m.mlpackage", {})


def in_spec_mac():
    run, info = recorded("m1")
    return detect(run=run, platform_info=info, coreml_runtime=True)


def fake_measure(medians_ms: dict):
    """measure() stand-in: median by (path, compute units); records what it was asked."""
    asked = []

    def fake(path, inputs, compute_units, **timing):
        asked.append((path, compute_units))
        return TimingStats(
            medians_ms[path, compute_units],
            1.1 * medians_ms[path, compute_units],
            50,
            5,
            0.01,
            True,
            load_seconds=2.0,
            compute_units=compute_units,
        )

    fake.asked = asked
    return fake


MEDIANS = {
    ("opt", "ALL"): 4.0,
    ("opt", "CPU_AND_NE"): 4.0,
    ("opt", "CPU_ONLY"): 12.0,
    ("opt", "CPU_AND_GPU"): 6.0,
    ("base", "ALL"): 11.36,
}


def test_in_spec_device_measures_both_ratios():
    fake = fake_measure(MEDIANS)
    report = speedup_checks("opt", "base", {}, seq_len=128, batch_size=1, device=in_spec_mac(), measure=fake)
    values = {c.name: c.value for c in report.checks}
    assert values == pytest.approx(
        {"speedup_vs_baseline": 2.84, "ane_speedup_vs_cpu_only": 3.0, "ane_speedup_vs_cpu_and_gpu": 1.5}
    )
    assert all(c.measured and c.passed for c in report.checks)
    assert {c.name: c.threshold for c in report.checks}["speedup_vs_baseline"] == 2.0
    assert sorted(fake.asked) == sorted(MEDIANS)
    assert report.timings["baseline/ALL"].load_seconds == 2.0
    assert enforce(report.checks) == []
    json.dumps(report.to_dict())


def test_a_ratio_below_its_threshold_fails_with_the_numbers():
    medians = {**MEDIANS, ("base", "ALL"): 6.0}  # 1.5x against a 2.0x threshold
    report = speedup_checks(
        "opt", "base", {}, seq_len=128, batch_size=1, device=in_spec_mac(), measure=fake_measure(medians)
    )
    failed = [c for c in report.checks if c.passed is False]
    assert [c.name for c in failed] == ["speedup_vs_baseline"]
    with pytest.raises(CheckFailed, match=r"speedup_vs_baseline: FAILED: .* = 1\.5 \(threshold 2\)"):
        enforce(report.checks)


def test_thresholds_come_from_the_published_figures_and_default_to_not_slower():
    assert thresholds.speedup_threshold("speedup_vs_baseline", 128, 1) == 2.0
    assert thresholds.speedup_threshold("speedup_vs_baseline", 512, 8) == 5.0
    for key, threshold in thresholds.SPEEDUP_THRESHOLDS.items():
        assert 1.0 < threshold <= thresholds.SPEEDUP_PUBLISHED[key]
    assert thresholds.speedup_threshold("speedup_vs_baseline", 64, 2) == 1.0
    assert thresholds.speedup_threshold("ane_speedup_vs_cpu_only", 128, 1) == 1.0


@pytest.mark.parametrize("name", ["intel_mac", "linux"])
def test_out_of_spec_devices_record_not_measured_and_warn(name, monkeypatch):
    monkeypatch.delenv(STRICT_ENV, raising=False)
    if name == "linux":
        from verification.device import PlatformInfo

        device, why = (
            detect(run=None, platform_info=PlatformInfo("Linux", "6.8", "x86_64")),
            "no Core ML runtime",
        )
    else:
        run, info = recorded(name)
        device, why = detect(run=run, platform_info=info, coreml_runtime=True), "Intel Mac"

    def never(*args, **kwargs):
        raise AssertionError("measured on an out-of-spec device")

    report = speedup_checks("opt", "base", {}, seq_len=512, batch_size=8, device=device, measure=never)
    assert [c.name for c in report.checks] == [
        "speedup_vs_baseline",
        "ane_speedup_vs_cpu_only",
        "ane_speedup_vs_cpu_and_gpu",
    ]
    for check in report.checks:
        assert (check.measured, check.passed, check.value) == (False, None, None)
        assert why in check.reason and "sequence 512, batch 8 not measured" in check.reason
    with pytest.warns(SpeedupNotMeasured, match=why) as warned:
        skipped = enforce(report.checks, category=SpeedupNotMeasured)
    assert len(skipped) == 3 and len(warned) == 3


def test_strict_mode_turns_not_measured_into_a_failure(monkeypatch):
    run, info = recorded("intel_mac")
    device = detect(run=run, platform_info=info, coreml_runtime=True)
    report = speedup_checks("opt", "base", {}, seq_len=128, batch_size=1, device=device, strict=True)
    assert all(c.passed is False and not c.measured for c in report.checks)
    with pytest.raises(CheckFailed, match="strict mode"):
        enforce(report.checks)
    monkeypatch.setenv(STRICT_ENV, "1")
    report = speedup_checks("opt", "base", {}, seq_len=128, batch_size=1, device=device)
    assert all(c.passed is False for c in report.checks)


def test_this_machine_reports_not_measured_with_the_reason(monkeypatch):
    monkeypatch.delenv(STRICT_ENV, raising=False)
    device = detect()
    if device.in_spec and device.coreml_runtime:
        pytest.skip("this machine can measure: see the macos tests")
    report = speedup_checks("opt", "base", {}, seq_len=128, batch_size=1)
    assert all(not c.measured and c.reason for c in report.checks)
    assert report.device["python"] and json.loads(json.dumps(report.to_dict()))["checks"][0]["passed"] is None


@pytest.fixture(scope="module")
def tiny_packages(tmp_path_factory):
    import torch
    import transformers

    import ane_models
    from verification.coreml import BaselineForConversion, convert, save

    torch.manual_seed(0)
    config = transformers.DistilBertConfig(
        dim=32,
        n_heads=2,
        n_layers=1,
        hidden_dim=64,
        vocab_size=60,
        max_position_embeddings=32,
        attn_implementation="eager",
    )
    hf = transformers.DistilBertModel(config).eval()
    ids = torch.randint(3, 60, (1, 16), dtype=torch.int32)
    inputs = (ids, torch.ones_like(ids))
    folder = tmp_path_factory.mktemp("speedup")
    optimized = save(convert(ane_models.optimize(hf), inputs), folder / "optimized.mlpackage")
    baseline = save(convert(BaselineForConversion(hf), inputs), folder / "baseline.mlpackage")
    feed = {"input_ids": ids.numpy(), "attention_mask": inputs[1].numpy()}
    return optimized, baseline, feed


@pytest.mark.macos
def test_core_ml_timing_on_this_mac(tiny_packages):
    optimized, baseline, feed = tiny_packages
    stats = measure(optimized, feed, "CPU_AND_NE", warmup=3, min_runs=10, time_budget_s=5)
    assert stats.runs >= 10 and stats.median_ms > 0 and stats.p90_ms >= stats.median_ms
    assert stats.load_seconds > 0
    report = speedup_checks(
        optimized,
        baseline,
        feed,
        seq_len=16,
        batch_size=1,
        strict=False,
        warmup=3,
        min_runs=10,
        time_budget_s=5,
    )
    if detect().in_spec:
        assert all(c.measured and c.value > 0 for c in report.checks), [c.describe() for c in report.checks]
    else:
        assert all(not c.measured for c in report.checks)


@pytest.mark.macos
@pytest.mark.slow
@pytest.mark.parametrize(("seq_len", "batch_size"), [(128, 1), (512, 8)])
def test_distilbert_base_speedup_on_this_mac(seq_len, batch_size, tmp_path):
    """The gate itself: DistilBERT-base (random weights), optimized against baseline, published shapes."""
    import torch
    import transformers

    import ane_models
    from verification.coreml import BaselineForConversion, convert, save

    torch.manual_seed(0)
    hf = transformers.DistilBertForSequenceClassification(
        transformers.DistilBertConfig(attn_implementation="eager")
    ).eval()
    ids = torch.randint(3, 30522, (batch_size, seq_len), dtype=torch.int32)
    inputs = (ids, torch.ones_like(ids))
    optimized = save(convert(ane_models.optimize(hf), inputs), tmp_path / "optimized.mlpackage")
    baseline = save(convert(BaselineForConversion(hf), inputs), tmp_path / "baseline.mlpackage")
    feed = {"input_ids": ids.numpy(), "attention_mask": inputs[1].numpy()}
    report = speedup_checks(
        optimized, baseline, feed, seq_len=seq_len, batch_size=batch_size, time_budget_s=10
    )
    print(json.dumps(report.to_dict(), indent=2))
    skipped = enforce(report.checks, category=SpeedupNotMeasured)
    if skipped:
        pytest.skip("; ".join(c.reason for c in skipped))
