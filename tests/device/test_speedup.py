"""Timing statistics and speed-up gates with fake clocks and predictors; the real thing on a Mac."""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path

import pytest
from recorded_devices import recorded

from verification import thresholds
from verification.checks import CheckFailed, enforce
from verification.ondevice.device import NotAvailableHere, PlatformInfo, detect, measurement_gate
from verification.ondevice.speedup import (
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


def test_measure_compiles_once_and_records_compile_and_load_time_apart():
    clock = FakeClock([5.0])
    loaded, compiled_to = [], []

    class FakeModel:
        def predict(self, inputs):
            assert inputs == {"x": 1}
            assert Path(compiled_to[0]).is_dir()  # the compiled model exists while it is timed
            clock.predict()

    def compiler(path, destination):
        compiled_to.append(str(destination))
        Path(destination).mkdir()
        clock.now += 3.0  # compiling the package
        return str(destination)

    def loader(path, compute_units):
        loaded.append((path, compute_units))
        clock.now += 1.5  # loading the compiled model on these compute units
        return FakeModel()

    stats = measure(
        "m.mlpackage",
        {"x": 1},
        "CPU_AND_NE",
        loader=loader,
        compiler=compiler,
        clock=clock,
        warmup=2,
        min_runs=8,
    )
    assert loaded == [(compiled_to[0], "CPU_AND_NE")] and compiled_to[0].endswith("m.mlmodelc")
    assert stats.compile_seconds == pytest.approx(3.0) and stats.load_seconds == pytest.approx(1.5)
    assert stats.compute_units == "CPU_AND_NE" and stats.median_ms == pytest.approx(5.0) and stats.runs == 8
    assert not os.path.exists(Path(compiled_to[0]).parent)  # the temporary compile is cleaned up

    # an already compiled model is loaded as it is: no compile, no compile time
    def plain_loader(path, compute_units):
        loaded.append((path, compute_units))
        return FakeClockModel()

    class FakeClockModel:
        def predict(self, inputs):
            clock.predict()

    stats = measure("c.mlmodelc", {}, loader=plain_loader, compiler=None, clock=clock, warmup=0, min_runs=6)
    assert loaded[-1] == ("c.mlmodelc", "ALL") and stats.compile_seconds is None


def test_bad_compute_units_are_refused_with_the_names():
    with pytest.raises(ValueError, match=r"compute_units: expected one of \['ALL', .*got 'NPU'"):
        measure("m.mlmodelc", {}, "NPU", loader=lambda *a: None)
    with pytest.raises(ValueError, match="got 'GPU'"):
        speedup_checks("o", "b", {}, seq_len=8, batch_size=1, baseline_compute_units="GPU")


@pytest.mark.skipif(platform.system() == "Darwin", reason="checks the answer where Core ML cannot run")
def test_timing_without_core_ml_is_not_available_here():
    with pytest.raises(NotAvailableHere, match="not available here.*needs macOS"):
        measure("m.mlpackage", {})


def in_spec_mac():
    run, info = recorded("m1")
    return detect(run=run, platform_info=info, coreml_runtime=True)


def fake_measure(medians_ms: dict, unstable=()):
    """measure() stand-in: median by (package stem, compute units); records what it was asked."""
    asked = []

    def fake(path, inputs, compute_units, **timing):
        assert path.endswith(".mlmodelc"), f"timed {path}: not the compiled model"
        key = (Path(path).stem, compute_units)
        asked.append(key)
        return TimingStats(
            medians_ms[key],
            1.1 * medians_ms[key],
            50,
            5,
            0.05 if key in unstable else 0.01,
            key not in unstable,
            load_seconds=0.5,
            compute_units=compute_units,
            target_rel_ci=0.02,
        )

    fake.asked = asked
    return fake


class FakeCompiler:
    """compile_package() stand-in: makes the .mlmodelc directory and counts the compiles."""

    def __init__(self):
        self.compiled = []

    def __call__(self, path, destination):
        self.compiled.append(str(path))
        Path(destination).mkdir()
        return str(destination)


MEDIANS = {
    ("opt", "ALL"): 4.0,
    ("opt", "CPU_AND_NE"): 4.0,
    ("opt", "CPU_ONLY"): 12.0,
    ("opt", "CPU_AND_GPU"): 6.0,
    ("base", "ALL"): 11.36,
}


def in_spec_checks(medians=MEDIANS, **kwargs):
    compiler = kwargs.pop("compiler", FakeCompiler())
    kwargs.setdefault("baseline_path", "base")
    return speedup_checks(
        "opt",
        inputs={},
        seq_len=128,
        batch_size=1,
        device=in_spec_mac(),
        measure=kwargs.pop("measure", fake_measure(medians)),
        compiler=compiler,
        **kwargs,
    )


def test_in_spec_device_measures_both_ratios():
    fake, compiler = fake_measure(MEDIANS), FakeCompiler()
    report = in_spec_checks(measure=fake, compiler=compiler)
    values = {c.name: c.value for c in report.checks}
    assert values == pytest.approx(
        {"speedup_vs_baseline": 2.84, "ane_speedup_vs_cpu_only": 3.0, "ane_speedup_vs_cpu_and_gpu": 1.5}
    )
    assert all(c.measured and c.passed and c.reason is None for c in report.checks)
    assert {c.name: c.threshold for c in report.checks}["speedup_vs_baseline"] == 2.0
    assert sorted(fake.asked) == sorted(MEDIANS)
    # compiled once per package, loaded once per compute-unit setting; compile time shared, load time apart
    assert compiler.compiled == ["opt", "base"]
    assert set(report.compile_seconds) == {"optimized", "baseline"}
    for label, stats in report.timings.items():
        package = label.split("/")[0]
        assert stats.compile_seconds == report.compile_seconds[package] and stats.load_seconds == 0.5
    assert enforce(report.checks) == []
    json.dumps(report.to_dict())


def test_a_ratio_below_its_threshold_fails_with_the_numbers():
    report = in_spec_checks({**MEDIANS, ("base", "ALL"): 6.0})  # 1.5x against a 2.0x threshold
    failed = [c for c in report.checks if c.passed is False]
    assert [c.name for c in failed] == ["speedup_vs_baseline"]
    with pytest.raises(CheckFailed, match=r"speedup_vs_baseline: FAILED: .* = 1\.5 \(threshold 2\)"):
        enforce(report.checks)


def test_a_median_that_did_not_stabilise_is_named_in_its_checks():
    report = in_spec_checks(measure=fake_measure(MEDIANS, unstable={("opt", "CPU_ONLY")}))
    checks = {c.name: c for c in report.checks}
    caveat = checks["ane_speedup_vs_cpu_only"].reason
    assert checks["ane_speedup_vs_cpu_only"].measured and checks["ane_speedup_vs_cpu_only"].passed
    assert "not stable" in caveat and "optimized/CPU_ONLY" in caveat and "5.0% > target +-2.0%" in caveat
    assert (
        checks["speedup_vs_baseline"].reason is None and checks["ane_speedup_vs_cpu_and_gpu"].reason is None
    )
    assert "not stable" in checks["ane_speedup_vs_cpu_only"].describe()
    assert json.loads(json.dumps(report.to_dict()))["timings"]["optimized/CPU_ONLY"]["stable"] is False


def test_without_a_baseline_the_baseline_ratio_is_not_measured_and_the_ane_ratios_are(monkeypatch):
    monkeypatch.delenv(STRICT_ENV, raising=False)
    fake, compiler = fake_measure(MEDIANS), FakeCompiler()
    why = "the baseline did not convert (RuntimeError: new_ones)"
    with pytest.warns(SpeedupNotMeasured, match="new_ones") as warned:
        report = in_spec_checks(baseline_path=None, baseline_unavailable=why, measure=fake, compiler=compiler)
    assert len([w for w in warned if issubclass(w.category, SpeedupNotMeasured)]) == 1
    checks = {c.name: c for c in report.checks}
    assert list(checks) == ["speedup_vs_baseline", "ane_speedup_vs_cpu_only", "ane_speedup_vs_cpu_and_gpu"]
    base = checks["speedup_vs_baseline"]
    assert (base.measured, base.passed, base.value) == (False, None, None) and why in base.reason
    assert checks["ane_speedup_vs_cpu_only"].value == pytest.approx(3.0)
    assert checks["ane_speedup_vs_cpu_and_gpu"].passed
    assert compiler.compiled == ["opt"] and all(package == "opt" for package, _ in fake.asked)
    with pytest.warns(SpeedupNotMeasured, match="strict mode"):
        strict = in_spec_checks(baseline_path=None, baseline_unavailable=why, strict=True)
    assert [c.passed for c in strict.checks] == [False, True, True]
    with pytest.raises(CheckFailed, match="strict mode"):
        enforce(strict.checks)


def test_thresholds_come_from_the_published_figures_and_default_to_not_slower():
    assert thresholds.speedup_threshold("speedup_vs_baseline", 128, 1) == 2.0
    assert thresholds.speedup_threshold("speedup_vs_baseline", 512, 8) == 5.0
    for key, threshold in thresholds.SPEEDUP_THRESHOLDS.items():
        assert 1.0 < threshold <= thresholds.SPEEDUP_PUBLISHED[key]
    assert thresholds.speedup_threshold("speedup_vs_baseline", 64, 2) == 1.0
    assert thresholds.speedup_threshold("ane_speedup_vs_cpu_only", 128, 1) == 1.0


@pytest.mark.parametrize("name", ["intel_mac", "rosetta_m2_on_macos_12", "linux"])
def test_devices_that_cannot_time_record_not_measured_and_warn(name, monkeypatch):
    monkeypatch.delenv(STRICT_ENV, raising=False)
    if name == "linux":
        device, why = (
            detect(run=None, platform_info=PlatformInfo("Linux", "6.8", "x86_64")),
            "no Core ML runtime",
        )
    elif name == "rosetta_m2_on_macos_12":  # in spec, but coremltools refuses CPU_AND_NE below macOS 13
        run, info = recorded("rosetta_m2")
        device, why = detect(run=run, platform_info=info, coreml_runtime=True), "needs macOS 13"
        assert device.in_spec
    else:
        run, info = recorded(name)
        device, why = detect(run=run, platform_info=info, coreml_runtime=True), "Intel Mac"

    def never(*args, **kwargs):
        raise AssertionError("measured where timing cannot run")

    with pytest.warns(SpeedupNotMeasured, match=why) as warned:  # speedup_checks warns by itself
        report = speedup_checks(
            "opt", "base", {}, seq_len=512, batch_size=8, device=device, measure=never, compiler=never
        )
    assert len([w for w in warned if issubclass(w.category, SpeedupNotMeasured)]) == 3
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
    with pytest.warns(SpeedupNotMeasured, match="strict mode"):
        report = speedup_checks("opt", "base", {}, seq_len=128, batch_size=1, device=device, strict=True)
    assert all(c.passed is False and not c.measured for c in report.checks)
    with pytest.raises(CheckFailed, match="strict mode"):
        enforce(report.checks)
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.warns(SpeedupNotMeasured):
        report = speedup_checks("opt", "base", {}, seq_len=128, batch_size=1, device=device)
    assert all(c.passed is False for c in report.checks)


def test_this_machine_reports_not_measured_with_the_reason(monkeypatch):
    monkeypatch.delenv(STRICT_ENV, raising=False)
    device = detect()
    if device.in_spec and device.coreml_runtime:
        pytest.skip("this machine can measure: see the macos tests")
    with pytest.warns(SpeedupNotMeasured):
        report = speedup_checks("opt", "base", {}, seq_len=128, batch_size=1)
    assert all(not c.measured and c.reason for c in report.checks)
    assert report.device["python"] and json.loads(json.dumps(report.to_dict()))["checks"][0]["passed"] is None


def pipeline_context(tmp_path, *, strict: bool):
    """A ``verification.release.pipeline`` context at the speed-up stage, after the baseline failed."""
    import torch

    from verification.release.context import Context, RunOptions

    ctx = Context(RunOptions("distilbert", seq_len=16, batch_size=1, strict=strict), staging=tmp_path)
    ctx.optimized_path = tmp_path / "opt.mlpackage"
    ctx.baseline_error = "the baseline did not convert (RuntimeError: new_ones not implemented)"
    ctx.names, ctx.inputs = ["input_ids"], (torch.ones(1, 16, dtype=torch.int32),)
    return ctx


@pytest.mark.parametrize("strict", [False, True])
def test_pipeline_records_the_baseline_ratio_as_not_measured_when_the_baseline_did_not_convert(
    tmp_path, strict, monkeypatch
):
    from verification.release.stages import speedup_and_placement

    monkeypatch.setattr("verification.ondevice.speedup.detect", lambda: detect(run=None, platform_info=LINUX))
    linux = lambda: detect(run=None, platform_info=LINUX)  # noqa: E731
    monkeypatch.setattr("verification.ondevice.placement.detect", linux)
    ctx = pipeline_context(tmp_path, strict=strict)
    speedup_and_placement(ctx)
    checks = {c["name"]: c for c in ctx.checks}
    base = checks["speedup_vs_baseline"]
    assert base["measured"] is False and base["passed"] is (False if strict else None)
    assert "the baseline did not convert" in base["reason"] and "no Core ML runtime" in base["reason"]
    assert {"ane_speedup_vs_cpu_only", "ane_speedup_vs_cpu_and_gpu", "ane_op_share"} <= set(checks)


def test_pipeline_still_measures_the_ane_ratios_without_a_baseline(tmp_path, monkeypatch):
    from verification.ondevice import speedup
    from verification.release.stages import speedup_and_placement

    monkeypatch.setattr("verification.ondevice.speedup.detect", in_spec_mac)
    linux = lambda: detect(run=None, platform_info=LINUX)  # noqa: E731
    monkeypatch.setattr("verification.ondevice.placement.detect", linux)
    fake = fake_measure({("opt", "CPU_AND_NE"): 4.0, ("opt", "CPU_ONLY"): 12.0, ("opt", "CPU_AND_GPU"): 8.0})
    monkeypatch.setitem(speedup.speedup_checks.__kwdefaults__, "measure", fake)
    monkeypatch.setitem(speedup.speedup_checks.__kwdefaults__, "compiler", FakeCompiler())
    ctx = pipeline_context(tmp_path, strict=False)
    speedup_and_placement(ctx)
    checks = {c["name"]: c for c in ctx.checks}
    assert checks["speedup_vs_baseline"]["measured"] is False
    assert checks["ane_speedup_vs_cpu_only"]["value"] == pytest.approx(3.0)
    assert checks["ane_speedup_vs_cpu_and_gpu"]["passed"] is True
    assert ctx.details["speedup"]["measured"] is True
    assert "the baseline did not convert" in ctx.details["speedup"]["reason"]


LINUX = PlatformInfo("Linux", "6.8", "x86_64")


@pytest.mark.macos
def test_core_ml_timing_and_the_speedup_gates_on_this_mac(tmp_path):
    """Default-run Mac test: a 2-layer DistilBERT at full width, timed on every compute-unit setting and
    gated by ``enforce`` at (64, 1), where every ratio must reach the default 1.0x (not slower)."""
    from small_models import distilbert_packages

    device = detect()
    if (blocked := measurement_gate(device)) is not None:
        pytest.skip(blocked)
    optimized, baseline, feed = distilbert_packages(tmp_path, seq_len=64)
    stats = measure(optimized, feed, "CPU_AND_NE", warmup=3, min_runs=10, time_budget_s=5)
    assert stats.runs >= 10 and 0 < stats.median_ms <= stats.p90_ms
    assert stats.compile_seconds > 0 and stats.load_seconds > 0
    report = speedup_checks(
        optimized,
        baseline,
        feed,
        seq_len=64,
        batch_size=1,
        strict=True,
        warmup=3,
        min_runs=10,
        time_budget_s=5,
    )
    print(json.dumps(report.to_dict(), indent=2))
    assert all(c.threshold == thresholds.speedup_threshold(c.name, 64, 1) == 1.0 for c in report.checks)
    assert enforce(report.checks, category=SpeedupNotMeasured) == []  # every ratio measured and passed


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


def test_the_pipeline_keeps_a_measured_checks_caveat_and_judges_it_by_the_runs_threshold(tmp_path):
    from dataclasses import replace

    from verification.checks import at_least
    from verification.release.context import adopted_check

    ctx = pipeline_context(tmp_path, strict=False)
    ctx.options.overrides = {"speedup_vs_baseline": 3.0}
    unsettled = replace(at_least("speedup_vs_baseline", "ratio", 2.5, 2.0), reason="median not stable")

    judged = adopted_check(unsettled, ctx)

    assert judged["measured"] is True and judged["reason"] == "median not stable"
    assert judged["threshold"] == 3.0 and judged["passed"] is False
    assert "reason" not in adopted_check(at_least("speedup_vs_baseline", "ratio", 2.5, 2.0), ctx)
