"""The stages of ``ane-verify run --target coreai``: the same model build and torch parity as the Core ML
target, then Core AI's conversion (``.aimodel``), parity on Core AI's runtime, Core AI's NaN/Inf
validator and Core AI's Neural Engine authoring rules. Each check's metric names the runtime that
computed it."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from ..equivalence.baselines import without_fast_path
from ..metrics import psnr
from . import model_zoo, stages
from .context import Context, adopted_check, judged_check

TARGETS = ("coreml", "coreai")

STAGES = (
    "build baseline and optimized model",
    "torch parity",
    "convert (Core AI)",
    "Core AI parity and NaN/Inf validator",
    "readiness report (Core AI rules)",
    "gate",
)


def build(ctx: Context) -> None:
    """The Core ML target's build, then the optimized model in ``ane_models``' coreai layout (Core AI's
    mask and axis forms; same outputs), so torch parity, conversion and the rules all see that layout."""
    from ane_models.layout import set_layout

    stages.build(ctx)
    set_layout(ctx.built.optimized, "coreai")


def _baseline_module(ctx: Context) -> torch.nn.Module:
    from ..coreml import BaselineForConversion

    if ctx.pair.family == "reference":
        return model_zoo.TransformerBaseline(ctx.pair.baseline)
    return BaselineForConversion(ctx.pair.baseline)


def convert(ctx: Context) -> None:
    from ..coreai import convert as to_coreai
    from ..coreai import save

    o = ctx.options
    stem = stages._artifact_stem(ctx)
    program = to_coreai(ctx.pair.optimized, ctx.inputs, precision=o.precision)
    ctx.coreai_program = program
    path = save(program, ctx.staging / f"HuggingFace_ane_transformers_{stem}.aimodel")
    ctx.optimized_path = path
    ctx.artifacts["optimized_aimodel"] = path.name
    try:
        with warnings.catch_warnings(), without_fast_path():
            warnings.simplefilter("ignore")
            baseline = to_coreai(_baseline_module(ctx), ctx.inputs, precision=o.precision)
        ctx.baseline_path = save(baseline, ctx.staging / f"HuggingFace_baseline_{stem}.aimodel")
        ctx.artifacts["baseline_aimodel"] = ctx.baseline_path.name
    except Exception as error:  # the optimized model's checks do not need it
        ctx.baseline_error = (
            f"the baseline did not convert to Core AI ({type(error).__name__}: {str(error)[:200]})"
        )
    ctx.details["coreai"] = {
        "conversion_seconds": round(program.conversion_seconds, 2),
        "inputs": program.input_names,
        "outputs": program.output_names,
    }


def coreai_parity(ctx: Context) -> None:
    from ..coreai import describe, predict
    from ..coreai.extra import versions

    program: Any = ctx.coreai_program
    runtime = describe()
    ctx.backend = "coreai"
    outputs = predict(ctx.package, program.feeds(ctx.inputs))
    first = torch.from_numpy(np.asarray(next(iter(outputs.values())), dtype=np.float32))
    reference = ctx.baseline_reference[0]
    real = stages._real_tokens(ctx)
    if first.dim() == 2 and real is not None and first.shape[1] != real.shape[1]:
        value = psnr(reference.softmax(-1), first.softmax(-1))
        metric = "PSNR (dB) of class probabilities: Core AI program vs the baseline in torch fp32"
    else:
        value = psnr(
            stages._comparable(reference, real), stages._comparable(stages._as_baseline_layout(first), real)
        )
        metric = "PSNR (dB) of the first output at real tokens: Core AI program vs the baseline in torch fp32"
    ctx.checks.append(judged_check("coreai_parity_psnr_db", f"{metric} (run by the {runtime})", value, ctx))
    ctx.details["coreai"].update(runtime=runtime, versions=versions())
    _validator(ctx, program)


def _validator(ctx: Context, program) -> None:
    from ..coreai.validator import non_finite_nodes

    exported_inputs = tuple(torch.from_numpy(v) for v in program.feeds(ctx.inputs).values())
    nodes = non_finite_nodes(program.exported_program, exported_inputs)
    bad = sorted(set(nodes.nan) | set(nodes.inf))
    check = judged_check(
        "coreai_validator_non_finite_nodes",
        f"nodes of the {ctx.options.precision} ExportedProgram whose outputs hold NaN or Inf (Core AI's "
        "validator, torch FX on CPU)",
        len(bad),
        ctx,
    )
    if bad:
        check["reason"] = f"NaN at {nodes.nan[:5]}, Inf at {nodes.inf[:5]}"
    ctx.checks.append(check)


def readiness(ctx: Context) -> None:
    from ..coreai.readiness import readiness_checks

    checks = readiness_checks(ctx.coreai_program, strict=ctx.options.strict)
    ctx.checks.extend(adopted_check(c, ctx) for c in checks)


FUNCTIONS = (build, stages.torch_parity, convert, coreai_parity, readiness)


def stages_for(target: str) -> tuple[tuple, tuple]:
    """(stage titles, stage functions) of ``ane-verify run --target TARGET``."""
    if target not in TARGETS:
        raise ValueError(f"--target: expected one of {list(TARGETS)}, got {target!r}")
    if target == "coreml":
        return stages.STAGES, stages.STAGE_FUNCTIONS
    from ..coreai import require

    require()
    return STAGES, FUNCTIONS
