"""Speed-up measurement with Core ML on in-spec devices, and gates that never pass silently.

Timing (``time_calls``): warm-up calls first (the first predictions pay for lazy allocation and, on
the ANE, for loading the compiled program), then timed calls until the median is stable: the
distribution-free 95% confidence interval of the median (order statistics at n/2 -+ 0.98 sqrt(n))
must be within ``target_rel_ci`` of the median, or the time budget or ``max_runs`` ends the loop
(``stable`` records which). Reported: median, p90 (nearest rank), n, and whether it converged.

Two ratios of medians (``speedup_checks``):

- ``speedup_vs_baseline``: baseline / optimized model on the same compute units (the tutorial's figure);
- ``ane_speedup_vs_cpu_only`` and ``ane_speedup_vs_cpu_and_gpu``: the optimized model on CPU_ONLY or
  CPU_AND_GPU over the same model on CPU_AND_NE.

Gating: on an in-spec device with a Core ML runtime, a ratio below its threshold fails; elsewhere each
check is "not measured" with the reason, and ``checks.enforce`` warns with ``SpeedupNotMeasured``.
``strict=True`` (or ``ANE_VERIFY_STRICT=1``) makes "not measured" a failure, for release pipelines
that must run on a Mac. Load time (``MLModel(path, compute_units=...)``, which compiles the package)
is recorded per compute-unit setting as a one-time cost.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

from verification import thresholds
from verification.checks import Check, NotMeasuredWarning, at_least, not_measured
from verification.device import DeviceSpec, NotAvailableHere, detect, fingerprint, measurement_gate

STRICT_ENV = "ANE_VERIFY_STRICT"


class SpeedupNotMeasured(NotMeasuredWarning):
    """A speed-up assertion was skipped: not measured here (out-of-spec chip or no Core ML runtime)."""


@dataclass(frozen=True)
class TimingStats:
    median_ms: float
    p90_ms: float
    runs: int
    warmup: int
    rel_ci: float  # half-width of the median's 95% CI over the median
    stable: bool  # rel_ci reached the target before the budget or max_runs
    load_seconds: float | None = None  # loading and compiling the model, a one-time cost
    compute_units: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def median(samples: list[float]) -> float:
    ordered = sorted(samples)
    n = len(ordered)
    middle = n // 2
    return ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def p90(samples: list[float]) -> float:
    """The 90th percentile by nearest rank: the smallest sample with at least 90% of samples at or below."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def median_relative_ci(samples: list[float]) -> float:
    """Half-width of the distribution-free 95% CI of the median, relative to the median (inf if n < 6)."""
    n = len(samples)
    if n < 6:
        return math.inf
    ordered = sorted(samples)
    spread = 0.98 * math.sqrt(n)  # 1.96 * sqrt(n) / 2 ranks either side of n/2
    low = ordered[max(0, math.floor(n / 2 - spread) - 1)]
    high = ordered[min(n - 1, math.ceil(n / 2 + spread) - 1)]
    center = median(samples)
    return (high - low) / 2 / center if center > 0 else math.inf


def time_calls(
    call: Callable[[], object],
    *,
    clock: Callable[[], float] = time.perf_counter,
    warmup: int = 5,
    min_runs: int = 20,
    max_runs: int = 1000,
    time_budget_s: float = 30.0,
    target_rel_ci: float = 0.02,
) -> TimingStats:
    """Time ``call()`` after ``warmup`` untimed calls, until the median is stable (see the module doc)."""
    if warmup < 0 or min_runs < 6 or max_runs < min_runs:
        raise ValueError(
            f"expected warmup >= 0 and 6 <= min_runs <= max_runs, got warmup={warmup}, "
            f"min_runs={min_runs}, max_runs={max_runs}"
        )
    for _ in range(warmup):
        call()
    samples: list[float] = []
    started = clock()
    rel_ci = math.inf
    while len(samples) < max_runs:
        before = clock()
        call()
        after = clock()
        samples.append((after - before) * 1e3)
        if len(samples) >= min_runs:
            rel_ci = median_relative_ci(samples)
            if rel_ci <= target_rel_ci or after - started >= time_budget_s:
                break
    return TimingStats(
        median(samples), p90(samples), len(samples), warmup, rel_ci, stable=rel_ci <= target_rel_ci
    )


def _load_coreml(path: str, compute_units: str):
    import coremltools as ct

    return ct.models.MLModel(str(path), compute_units=getattr(ct.ComputeUnit, compute_units))


def measure(
    path,
    inputs: Mapping,
    compute_units: str = "ALL",
    *,
    loader=_load_coreml,
    clock: Callable[[], float] = time.perf_counter,
    **timing,
) -> TimingStats:
    """Load (compile) the ``.mlpackage`` at ``path`` on ``compute_units`` once, then time ``predict``.

    ``compute_units`` is a ``coremltools.ComputeUnit`` name: ALL, CPU_ONLY, CPU_AND_GPU, CPU_AND_NE.
    ``loader(path, compute_units)`` returns an object with ``predict(inputs)`` (injectable for tests).
    Raises ``NotAvailableHere`` where the default loader has no Core ML runtime.
    """
    if loader is _load_coreml:
        from verification.coreml.predict import coreml_runtime_available

        if not coreml_runtime_available():
            raise NotAvailableHere(
                f"not available here: timing Core ML predictions of {path} needs macOS "
                "with a Core ML runtime (coremltools only converts on this platform)"
            )
    started = clock()
    model = loader(path, compute_units)
    load_seconds = clock() - started
    stats = time_calls(lambda: model.predict(inputs), clock=clock, **timing)
    return TimingStats(**{**stats.to_dict(), "load_seconds": load_seconds, "compute_units": compute_units})


METRICS = {
    "speedup_vs_baseline": "median latency baseline / optimized model, same compute units",
    "ane_speedup_vs_cpu_only": "median latency optimized model CPU_ONLY / CPU_AND_NE",
    "ane_speedup_vs_cpu_and_gpu": "median latency optimized model CPU_AND_GPU / CPU_AND_NE",
}


def strict_from_env() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes")


@dataclass
class SpeedupReport:
    seq_len: int
    batch_size: int
    device: dict
    timings: dict[str, TimingStats] = field(default_factory=dict)  # "optimized/CPU_AND_NE", ...
    checks: list[Check] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "seq_len": self.seq_len,
            "batch_size": self.batch_size,
            "device": self.device,
            "timings": {k: v.to_dict() for k, v in self.timings.items()},
            "checks": [c.to_dict() for c in self.checks],
        }


def speedup_checks(
    optimized_path,
    baseline_path,
    inputs: Mapping,
    *,
    seq_len: int,
    batch_size: int,
    baseline_inputs: Mapping | None = None,
    baseline_compute_units: str = "ALL",
    device: DeviceSpec | None = None,
    strict: bool | None = None,
    measure=measure,
    **timing,
) -> SpeedupReport:
    """Measure both ratios where the device allows it; else record each check as not measured, why.

    ``measure(path, inputs, compute_units, **timing)`` returns ``TimingStats`` (injectable for tests).
    Thresholds come from ``thresholds.speedup_threshold(name, seq_len, batch_size)``.
    """
    device = device or detect()
    strict = strict_from_env() if strict is None else strict
    report = SpeedupReport(seq_len, batch_size, fingerprint(device))
    limits = {name: thresholds.speedup_threshold(name, seq_len, batch_size) for name in METRICS}
    blocked = measurement_gate(device)
    if blocked is not None:
        for name, metric in METRICS.items():
            what = f"{name} at sequence {seq_len}, batch {batch_size} not measured"
            report.checks.append(
                not_measured(name, metric, limits[name], f"{what}: {blocked}", strict=strict)
            )
        return report
    units = (baseline_compute_units, "CPU_AND_NE", "CPU_ONLY", "CPU_AND_GPU")
    for unit in dict.fromkeys(units):
        report.timings[f"optimized/{unit}"] = measure(optimized_path, inputs, unit, **timing)
    report.timings[f"baseline/{baseline_compute_units}"] = measure(
        baseline_path,
        baseline_inputs if baseline_inputs is not None else inputs,
        baseline_compute_units,
        **timing,
    )
    t = {key: stats.median_ms for key, stats in report.timings.items()}
    ratios = {
        "speedup_vs_baseline": t[f"baseline/{baseline_compute_units}"]
        / t[f"optimized/{baseline_compute_units}"],
        "ane_speedup_vs_cpu_only": t["optimized/CPU_ONLY"] / t["optimized/CPU_AND_NE"],
        "ane_speedup_vs_cpu_and_gpu": t["optimized/CPU_AND_GPU"] / t["optimized/CPU_AND_NE"],
    }
    report.checks = [at_least(name, METRICS[name], ratios[name], limits[name]) for name in METRICS]
    return report
