"""A run's options and the context its stages share, and how a check is judged against the run's
thresholds (defaults < pyproject < flags)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import gate_config

if TYPE_CHECKING:
    from . import model_zoo


@dataclass
class RunOptions:
    model: str | None
    weights: str | None = None
    seq_len: int = 128
    batch_size: int = 1
    precision: str = "fp16"
    backend: str = "auto"
    exporter: str = "trace"
    target: str = "coreml"  # coreml | coreai (release.coreai_stages)
    out: Path = Path("ane-verify-out")
    strict: bool = False
    overrides: dict = field(default_factory=dict)
    compress: str | None = None  # --compress, as given
    deployment_target: str | None = None  # --deployment-target (iOS18 when compressing, unless given)
    recipe: Any = None  # the parsed --compress (verification.compression.recipe.Recipe)
    texts: tuple[str, ...] = ()  # --text: inputs through the checkpoint's tokenizer, one row each
    with_baseline: bool = False  # --with-baseline: convert the baseline even where no check reads it


@dataclass
class Context:
    options: RunOptions
    staging: Path
    plan: Any = None  # preflight.Plan: what the arguments decided, before anything was built
    progress: Callable[[str, int, int], None] = lambda label, done, total: None  # inside a stage
    built: model_zoo.ModelPair | None = None  # set by the build stage
    inputs: tuple = ()
    names: list = field(default_factory=list)
    checks: list = field(default_factory=list)
    details: dict = field(default_factory=dict)
    artifacts: dict = field(default_factory=dict)
    backend: str = "mil"
    baseline_reference: tuple = ()
    optimized_path: Path | None = None
    baseline_path: Path | None = None
    baseline_error: str | None = None
    coreai_program: object | None = None  # verification.coreai.CoreAIProgram (--target coreai)

    @property
    def pair(self) -> model_zoo.ModelPair:
        if self.built is None:
            raise RuntimeError("pipeline: a stage ran before the build stage")
        return self.built

    @property
    def package(self) -> Path:
        """The optimized model's saved .mlpackage (from the convert stage on)."""
        if self.optimized_path is None:
            raise RuntimeError("pipeline: a stage ran before the convert stage")
        return self.optimized_path


def architecture_of(ctx: Context) -> str | None:
    """The transformers class the optimized model was built from (its head), if any (``check`` names the
    reference's, having built no optimized model)."""
    if getattr(ctx, "architecture", None):
        return ctx.architecture
    config = getattr(ctx.built.optimized, "ane_config", None) if ctx.built is not None else None
    return getattr(config, "architecture", None)


def judged_check(name: str, metric: str, value, ctx: Context, reason: str | None = None) -> dict:
    """A check judged against the run's threshold for ``name`` (defaults < pyproject < flags)."""
    o = ctx.options
    if name in o.overrides:
        threshold = o.overrides[name]
        source = o.overrides.source(name) if isinstance(o.overrides, gate_config.Thresholds) else "RunOptions"
    else:
        threshold = gate_config.default_threshold(
            name,
            precision=o.precision,
            seq_len=o.seq_len,
            batch_size=o.batch_size,
            architecture=architecture_of(ctx),
        )
        source = gate_config.DEFAULT_SOURCE
    raw = {
        "name": name,
        "metric": metric,
        "value": value,
        "threshold": threshold,
        "passed": None,
        "measured": reason is None,
    }
    if reason is not None:
        raw["reason"] = reason
    judged = gate_config.evaluate(raw, threshold, strict=o.strict, source=source)
    if isinstance(value, float) and not math.isfinite(value):
        judged["value"] = str(value)
    return judged


def adopted_check(check, ctx: Context) -> dict:
    """A ``verification.checks.Check`` from the readiness, speed-up and placement modules, re-judged
    against the run's thresholds. A measured check keeps its reason as a caveat (a median that did not
    settle, the ops that left the Neural Engine)."""
    if not check.measured:
        return judged_check(check.name, check.metric, check.value, ctx, reason=check.reason)
    judged = judged_check(check.name, check.metric, check.value, ctx)
    if check.reason:
        judged["reason"] = check.reason
    return judged
