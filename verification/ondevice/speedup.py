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

Gating: on an in-spec device with a Core ML runtime (macOS 13 or newer, for ``CPU_AND_NE``), a ratio
below its threshold fails; elsewhere each check is "not measured" with the reason, and
``speedup_checks`` itself warns with ``SpeedupNotMeasured`` for each. Without a baseline package (the
baseline did not convert) ``speedup_vs_baseline`` is not measured, with that reason, and the ANE ratios
are still measured. ``strict=True`` (or ``ANE_VERIFY_STRICT=1``) makes "not measured" a failure, for
release pipelines that must run on a Mac. A ratio whose medians did not stabilise within the timing
budget is still judged, and its check says so in ``reason``.

Compile once, load per compute-unit setting: each package is compiled once
(``coremltools.models.utils.compile_model``, into a temporary directory removed afterwards) and the
``.mlmodelc`` is loaded with ``coremltools.models.CompiledMLModel(path, compute_units=...)`` per setting
(``MLModel(package, compute_units=...)`` would recompile the package at every load). Compile time
(``compile_seconds``, shared by the settings) and load time (``load_seconds``) are recorded apart.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from verification import thresholds
from verification.checks import Check, SpeedupNotMeasured, at_least, not_measured, warn_not_measured
from verification.ondevice.device import DeviceSpec, NotAvailableHere, detect, fingerprint, measurement_gate

STRICT_ENV = "ANE_VERIFY_STRICT"
COMPUTE_UNITS = ("ALL", "CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE")  # coremltools.ComputeUnit names


@dataclass(frozen=True)
class TimingStats:
    median_ms: float
    p90_ms: float
    runs: int
    warmup: int
    rel_ci: float  # half-width of the median's 95% CI over the median
    stable: bool  # rel_ci reached the target before the budget or max_runs
    load_seconds: float | None = None  # loading the compiled model on these compute units, one-time cost
    compute_units: str | None = None
    compile_seconds: float | None = None  # compiling the package, once for every compute-unit setting
    target_rel_ci: float | None = None  # the rel_ci that counts as stable

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
        median(samples),
        p90(samples),
        len(samples),
        warmup,
        rel_ci,
        stable=rel_ci <= target_rel_ci,
        target_rel_ci=target_rel_ci,
    )


def compile_package(package_path, destination) -> str:
    """Compile the ``.mlpackage`` (or ``.mlmodel``) at ``package_path`` to ``destination`` (an ``.mlmodelc``).

    ``coremltools.models.utils.compile_model`` and ``coremltools.models.CompiledMLModel`` arrived in
    coremltools 7.0 (apple/coremltools#1934, 2023; ``destination_path`` with #2059, November 2023), so the
    legacy cell (8.3) and the default (9.0) both have them: no fallback to ``MLModel`` is needed. macOS
    only (coremltools raises elsewhere).
    """
    from coremltools.models.utils import compile_model

    return compile_model(str(package_path), destination_path=str(destination))


@dataclass(frozen=True)
class CompiledPackage:
    source: str
    path: str  # the .mlmodelc
    seconds: float | None  # compile time; None when ``source`` was already compiled


def _is_compiled(path) -> bool:
    return str(path).rstrip("/").endswith(".mlmodelc")


@contextmanager
def compiled(
    path, *, compiler=compile_package, clock: Callable[[], float] = time.perf_counter
) -> Iterator[CompiledPackage]:
    """The compiled form of ``path``: compiled once into a temporary directory, removed on exit.

    A ``.mlmodelc`` is used as it is. ``compiler(path, destination) -> compiled path`` is injectable.
    """
    if _is_compiled(path):
        yield CompiledPackage(str(path), str(path), None)
        return
    folder = tempfile.mkdtemp(prefix="ane-verify-compiled-")
    try:
        destination = Path(folder) / (Path(str(path).rstrip("/")).stem + ".mlmodelc")
        started = clock()
        compiled_path = compiler(path, destination)
        yield CompiledPackage(str(path), str(compiled_path), clock() - started)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _load_compiled(compiled_path: str, compute_units: str):
    import coremltools as ct

    return ct.models.CompiledMLModel(str(compiled_path), compute_units=getattr(ct.ComputeUnit, compute_units))


def _check_compute_units(compute_units) -> None:
    if compute_units not in COMPUTE_UNITS:
        raise ValueError(f"compute_units: expected one of {list(COMPUTE_UNITS)}, got {compute_units!r}")


def measure(
    path,
    inputs: Mapping,
    compute_units: str = "ALL",
    *,
    loader=_load_compiled,
    compiler=compile_package,
    clock: Callable[[], float] = time.perf_counter,
    **timing,
) -> TimingStats:
    """Time ``predict`` of the model at ``path`` on ``compute_units``, after loading it once.

    ``path`` is an ``.mlpackage`` (compiled here, once, into a temporary directory) or an ``.mlmodelc``.
    ``compute_units`` is a ``coremltools.ComputeUnit`` name: ALL, CPU_ONLY, CPU_AND_GPU, CPU_AND_NE.
    ``loader(compiled_path, compute_units)`` returns an object with ``predict(inputs)`` and
    ``compiler(path, destination)`` compiles (both injectable for tests). Raises ``NotAvailableHere``
    where the default loader or compiler has no Core ML runtime.
    """
    _check_compute_units(compute_units)
    if loader is _load_compiled or (compiler is compile_package and not _is_compiled(path)):
        from verification.coreml.predict import coreml_runtime_available

        if not coreml_runtime_available():
            raise NotAvailableHere(
                f"not available here: timing Core ML predictions of {path} needs macOS "
                "with a Core ML runtime (coremltools only converts on this platform)"
            )
    with compiled(path, compiler=compiler, clock=clock) as package:
        started = clock()
        model = loader(package.path, compute_units)
        load_seconds = clock() - started
        call = functools.partial(model.predict, inputs)
        stats = time_calls(call, clock=clock, **timing)
        del call, model  # release the loaded model before its compiled directory is removed
    return replace(
        stats, load_seconds=load_seconds, compute_units=compute_units, compile_seconds=package.seconds
    )


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
    compile_seconds: dict[str, float | None] = field(default_factory=dict)  # "optimized", "baseline"

    def to_dict(self) -> dict:
        return {
            "seq_len": self.seq_len,
            "batch_size": self.batch_size,
            "device": self.device,
            "timings": {k: v.to_dict() for k, v in self.timings.items()},
            "compile_seconds": dict(self.compile_seconds),
            "checks": [c.to_dict() for c in self.checks],
        }


def _instability(stats: dict[str, TimingStats]) -> str | None:
    """A caveat naming each timing whose median did not stabilise within the budget, else None."""
    unstable = [
        f"{label} (n={t.runs}, 95% CI of the median +-{100 * t.rel_ci:.1f}%"
        + (f" > target +-{100 * t.target_rel_ci:.1f}%)" if t.target_rel_ci is not None else ")")
        for label, t in stats.items()
        if not t.stable
    ]
    if not unstable:
        return None
    listed = ", ".join(unstable)
    return f"median not stable within the timing budget: {listed}; the ratio is less certain"


def speedup_checks(
    optimized_path,
    baseline_path,
    inputs: Mapping,
    *,
    seq_len: int,
    batch_size: int,
    baseline_inputs: Mapping | None = None,
    baseline_compute_units: str = "ALL",
    baseline_unavailable: str | None = None,
    device: DeviceSpec | None = None,
    strict: bool | None = None,
    measure=measure,
    compiler=compile_package,
    **timing,
) -> SpeedupReport:
    """Measure the ratios where the device allows it; else record each check as not measured, and why.

    ``baseline_path`` may be None (the baseline did not convert): ``speedup_vs_baseline`` is then not
    measured with ``baseline_unavailable`` as the reason, and the ANE ratios are measured as usual.
    Each package is compiled once (``compiler(path, destination)``), then
    ``measure(compiled_path, inputs, compute_units, **timing)`` returns ``TimingStats`` per setting (both
    injectable for tests). Thresholds: ``thresholds.speedup_threshold(name, seq_len, batch_size)``.
    Warns ``SpeedupNotMeasured`` for each check not measured.
    """
    _check_compute_units(baseline_compute_units)
    device = device or detect()
    strict = strict_from_env() if strict is None else strict
    report = SpeedupReport(seq_len, batch_size, fingerprint(device))
    limits = {name: thresholds.speedup_threshold(name, seq_len, batch_size) for name in METRICS}

    def skipped(name: str, why: str) -> Check:
        what = f"{name} at sequence {seq_len}, batch {batch_size} not measured"
        return not_measured(name, METRICS[name], limits[name], f"{what}: {why}", strict=strict)

    no_baseline = baseline_unavailable or "no baseline package was given"
    blocked = measurement_gate(device)
    if blocked is not None:
        report.checks = [
            skipped(name, f"{blocked}; {no_baseline}")
            if name == "speedup_vs_baseline" and baseline_path is None
            else skipped(name, blocked)
            for name in METRICS
        ]
        warn_not_measured(report.checks, SpeedupNotMeasured)
        return report
    units: tuple[str, ...] = ("CPU_AND_NE", "CPU_ONLY", "CPU_AND_GPU")
    if baseline_path is not None:
        units = (baseline_compute_units, *units)
    with ExitStack() as stack:
        optimized = stack.enter_context(compiled(optimized_path, compiler=compiler))
        report.compile_seconds["optimized"] = optimized.seconds
        for unit in dict.fromkeys(units):
            stats = measure(optimized.path, inputs, unit, **timing)
            report.timings[f"optimized/{unit}"] = replace(stats, compile_seconds=optimized.seconds)
        if baseline_path is not None:
            baseline = stack.enter_context(compiled(baseline_path, compiler=compiler))
            report.compile_seconds["baseline"] = baseline.seconds
            stats = measure(
                baseline.path,
                baseline_inputs if baseline_inputs is not None else inputs,
                baseline_compute_units,
                **timing,
            )
            report.timings[f"baseline/{baseline_compute_units}"] = replace(
                stats, compile_seconds=baseline.seconds
            )
    t = report.timings
    operands = {
        "ane_speedup_vs_cpu_only": ("optimized/CPU_ONLY", "optimized/CPU_AND_NE"),
        "ane_speedup_vs_cpu_and_gpu": ("optimized/CPU_AND_GPU", "optimized/CPU_AND_NE"),
    }
    if baseline_path is not None:
        operands["speedup_vs_baseline"] = (
            f"baseline/{baseline_compute_units}",
            f"optimized/{baseline_compute_units}",
        )
    for name in METRICS:
        if name not in operands:
            report.checks.append(skipped(name, no_baseline))
            continue
        slower, faster = operands[name]
        check = at_least(name, METRICS[name], t[slower].median_ms / t[faster].median_ms, limits[name])
        caveat = _instability({slower: t[slower], faster: t[faster]})
        report.checks.append(replace(check, reason=caveat) if caveat else check)
    warn_not_measured(report.checks, SpeedupNotMeasured)
    return report
