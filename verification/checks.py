"""Gate results shared by the speed-up, placement and readiness checks, shaped for ``report.json``.

A ``Check`` has exactly the fields a report check carries: ``name``, ``metric``, ``value``,
``threshold``, ``passed``, ``measured`` and ``reason``. A check that could not be measured has
``measured=False``, ``value=None``, a ``reason``, and ``passed=None`` (skipped with a warning) or, in
strict mode, ``passed=False`` (a failure): nothing passes silently.

Check names are stable (reports and dashboards key on them):

=============================  ===============================================================  =========
name                           metric                                                           passes if
=============================  ===============================================================  =========
speedup_vs_baseline            median latency baseline / optimized, same compute units          >= thr
ane_speedup_vs_cpu_only        median latency optimized CPU_ONLY / optimized CPU_AND_NE         >= thr
ane_speedup_vs_cpu_and_gpu     median latency optimized CPU_AND_GPU / optimized CPU_AND_NE      >= thr
ane_op_share                   share of non-const ops, embedding lookups (gathers) excepted,    >= thr
                               whose preferred device is the ANE
ane_cost_share                 share of the compute plan's estimated cost on the ANE,           >= thr
                               embedding lookups excepted
ane_fallback_ops               ops off the ANE other than the allowed ones (embedding lookup)   <= thr
readiness_layer_norms_fused    fused layer_norm ops / all layer norms (static; not measured     >= thr
                               when no layer norm is found)
readiness_copies_per_layer     transposes + data-moving reshapes inside the encoder layers      <= thr
                               / layer (static)
readiness_copies_outside_layers  transposes + data-moving reshapes outside the encoder layers   <= thr
                               (static; threshold by head: thresholds.py)
readiness_dims_within_limits   tensors over the known ANE dimension limits (static)             <= thr
readiness_off_ane_ops          ops that typically run off the ANE (gather, int32) (static)      <= thr
=============================  ===============================================================  =========

A measured check may carry a ``reason`` too: a caveat on the figure (for example a median that did not
stabilise within the timing budget). ``describe`` prints it.

Warning categories: ``speedup_checks`` and ``measure_placement`` warn with ``SpeedupNotMeasured`` and
``PlacementNotMeasured`` (both ``NotMeasuredWarning``) for every check they could not measure, so a
caller that ignores the report still hears about it; ``enforce`` warns again with the category it is given.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

# Core AI's Neural Engine authoring rules (verification.coreai.readiness checks them); here so that the
# gate's table of check names does not import the coreai package (and torch with it).
COREAI_RULE_NAMES = (
    "coreai_no_fused_sdpa",
    "coreai_mask_layout",
    "coreai_mask_sentinel",
    "coreai_fp32_tensors",
    "coreai_singleton_last_axis",
    "coreai_rank_over_5",
    "coreai_linear_ops",
)


class NotMeasuredWarning(UserWarning):
    """A check was skipped because it could not be measured here (the message says what and why)."""


class SpeedupNotMeasured(NotMeasuredWarning):
    """A speed-up check was not measured here (out-of-spec chip, no Core ML runtime, macOS older than 13,
    or no baseline package)."""


class PlacementNotMeasured(NotMeasuredWarning):
    """An ANE placement check was not measured here (no compute plan: not macOS 14.4+ with Core ML and a
    Neural Engine, or no compiled model to read it from)."""


class CheckFailed(AssertionError):
    """One or more checks failed; the message lists each with its value and threshold."""


@dataclass(frozen=True)
class Check:
    name: str
    metric: str
    value: float | None
    threshold: float
    passed: bool | None
    measured: bool
    reason: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        if not self.measured:
            verdict = "FAILED (strict)" if self.passed is False else "not measured"
            return f"{self.name}: {verdict}: {self.reason}"
        verdict = "passed" if self.passed else "FAILED"
        figures = f"{_number(self.value)} (threshold {_number(self.threshold)})"
        caveat = f" ({self.reason})" if self.reason else ""
        return f"{self.name}: {verdict}: {self.metric} = {figures}{caveat}"


def _number(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def at_least(name: str, metric: str, value: float, threshold: float) -> Check:
    return Check(name, metric, value, threshold, passed=value >= threshold, measured=True)


def at_most(name: str, metric: str, value: float, threshold: float) -> Check:
    return Check(name, metric, value, threshold, passed=value <= threshold, measured=True)


def not_measured(name: str, metric: str, threshold: float, reason: str, *, strict: bool = False) -> Check:
    """A check that could not be measured: skipped (``passed=None``), or failed in strict mode."""
    if strict:
        reason = f"{reason} (strict mode: not measured counts as a failure)"
    return Check(
        name, metric, None, threshold, passed=False if strict else None, measured=False, reason=reason
    )


def warn_not_measured(checks, category: type[Warning] = NotMeasuredWarning, *, stacklevel: int = 3) -> None:
    """Warn (``category``) once for each check of ``checks`` that was not measured, with its reason."""
    for check in checks:
        if not check.measured:
            warnings.warn(check.describe(), category, stacklevel=stacklevel)


def enforce(checks, *, category: type[Warning] = NotMeasuredWarning) -> list[Check]:
    """Raise ``CheckFailed`` if any check failed; warn (``category``) for each check not measured.

    Returns the checks that were not measured, so a test can skip with their reasons.
    """
    checks = list(checks)
    failed = [c for c in checks if c.passed is False]
    if failed:
        raise CheckFailed("\n".join(c.describe() for c in failed))
    skipped = [c for c in checks if not c.measured]
    for check in skipped:
        warnings.warn(check.describe(), category, stacklevel=2)
    return skipped
