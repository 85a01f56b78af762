"""The stages of ``ane-verify run``, in order: each reads and extends the run's ``Context``."""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ane_layers import from_bc1s

from ..equivalence.baselines import without_fast_path
from ..metrics import psnr
from . import model_zoo
from .context import Context, adopted_check, architecture_of, judged_check

STAGES = (
    "build baseline and optimized model",
    "torch parity",
    "convert",
    "Core ML parity and fp16 hazards",
    "readiness report",
    "speed-up and placement",
    "compression",
    "gate",
)


def build(ctx: Context) -> None:
    o = ctx.options
    plan = ctx.plan
    if plan is None:  # stages called directly (tests): decide now what preflight decides before a run
        from .preflight import plan as make_plan

        plan = ctx.plan = make_plan(o)
    if plan.checkpoint is not None:
        pair = model_zoo.from_directory(plan.checkpoint.path, plan.checkpoint)
        if plan.tokenizer is not None:
            pair.tokenizer = plan.tokenizer
    else:
        pair = model_zoo.embedded(plan.family)
    model_zoo.check_sizes(pair, o.seq_len, o.batch_size)
    ctx.built = pair
    ctx.inputs = model_zoo.example_inputs(pair, o.seq_len, o.batch_size, list(o.texts) or None)
    ctx.details["source"] = plan.to_dict(model_zoo.inputs_source(pair, o.batch_size, list(o.texts) or None))
    import inspect

    params = [
        p
        for p in inspect.signature(pair.optimized.forward).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    ctx.names = [p.name for p in params[: len(ctx.inputs)]]


def _real_tokens(ctx: Context) -> torch.Tensor | None:
    """(rows, S): True at real tokens; a multiple-choice head's (B, choices, S) as its B x choices rows,
    the way its encoder sees them."""
    if ctx.pair.family == "reference":
        return None
    return ctx.inputs[1].bool().flatten(0, -2)


def _comparable(tensor: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
    """Outputs with a sequence axis are compared at real tokens only (padding carries no meaning)."""
    if real is not None and tensor.dim() >= 2 and tuple(tensor.shape[:2]) == tuple(real.shape):
        return tensor[real]
    return tensor


def _run_baseline(ctx: Context) -> tuple:
    pair = ctx.pair
    with torch.no_grad():
        if pair.family == "reference":
            with without_fast_path():
                return (model_zoo.TransformerBaseline(pair.baseline)(*ctx.inputs),)
        from ..coreml import BaselineForConversion

        return tuple(BaselineForConversion(pair.baseline)(*[x.long() for x in ctx.inputs]))


def _as_baseline_layout(output: torch.Tensor) -> torch.Tensor:
    return from_bc1s(output) if output.dim() == 4 and output.shape[2] == 1 else output


def torch_parity(ctx: Context) -> None:
    ctx.baseline_reference = _run_baseline(ctx)
    with torch.no_grad():
        optimized = ctx.pair.optimized(*ctx.inputs)
    optimized = optimized if isinstance(optimized, tuple) else (optimized,)
    real = _real_tokens(ctx)
    values = [
        psnr(_comparable(ref, real), _comparable(_as_baseline_layout(out), real))
        for ref, out in zip(ctx.baseline_reference, optimized, strict=False)
    ]
    ctx.checks.append(
        judged_check(
            "torch_parity_psnr_db",
            "min PSNR (dB) of the optimized model's outputs in torch fp32 vs the baseline's, at real tokens",
            min(values),
            ctx,
        )
    )
    ctx.details["layer_parity"] = _layer_parity(ctx, real)


def _layer_parity(ctx: Context, real) -> list[dict]:
    """PSNR of each layer's output: optimized (hooks) vs baseline (transformers' hidden states)."""
    pair = ctx.pair
    base = getattr(pair.optimized, "backbone", pair.optimized)
    if pair.family == "reference" or not hasattr(base, "layers") or not hasattr(base, "embeddings"):
        return []
    captured: list[torch.Tensor] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: captured.append(out))
        for m in [base.embeddings, *base.layers]
    ]
    try:
        with torch.no_grad():
            pair.optimized(*ctx.inputs)
            kwargs = {"input_ids": ctx.inputs[0].long(), "attention_mask": ctx.inputs[1].long()}
            reference = pair.baseline(**kwargs, output_hidden_states=True, return_dict=True).hidden_states
    finally:
        for hook in hooks:
            hook.remove()
    names = ["embeddings"] + [f"layer {i}" for i in range(len(captured) - 1)]
    return [
        {"layer": name, "psnr_db": psnr(_comparable(ref, real), _comparable(from_bc1s(out), real))}
        for name, ref, out in zip(names, reference, captured, strict=False)
    ]


def _artifact_stem(ctx: Context) -> str:
    o = ctx.options
    name = ctx.pair.family if o.weights is None else Path(o.weights).name
    return f"{name}_seqLen{o.seq_len}_batchSize{o.batch_size}"


BASELINE_NOT_NEEDED = (
    "the baseline program was not converted: only speedup_vs_baseline reads it, and that times it with "
    "Core ML on a Mac; --with-baseline converts it here too (for the op-count comparison)"
)


def convert(ctx: Context) -> None:
    from ..coreml import BaselineForConversion, save
    from ..coreml import convert as to_coreml

    o = ctx.options
    stem = _artifact_stem(ctx)
    target = None
    if o.recipe is not None:  # compression: checked against the torch model before converting
        from .compression_stage import check_model

        check_model(o.recipe, ctx.pair.optimized)
    if o.deployment_target is not None:
        import coremltools as ct

        target = getattr(ct.target, o.deployment_target)
    ctx.progress("programs converted", 0, 2)
    # Named as in the published tutorial (HuggingFace_ane_transformers_distilbert_seqLen128_batchSize1).
    mlmodel = to_coreml(
        ctx.pair.optimized,
        ctx.inputs,
        precision=o.precision,
        exporter=o.exporter,
        minimum_deployment_target=target,
    )
    ctx.optimized_path = save(mlmodel, ctx.staging / f"HuggingFace_ane_transformers_{stem}.mlpackage")
    ctx.artifacts["optimized_mlpackage"] = ctx.optimized_path.name
    ctx.progress("programs converted", 1, 2)
    from ..coreml import resolve_backend

    if not o.with_baseline and resolve_backend(o.backend) != "coreml":
        # only speedup_vs_baseline reads the baseline program, and it times it with Core ML (a Mac)
        ctx.baseline_error = BASELINE_NOT_NEEDED
        ctx.progress("programs converted", 2, 2)
        return
    # The baseline takes the optimized model's inputs (names, shapes, dtypes), so that one input
    # dictionary times both. torch.nn.Transformer converts only through torch.export: traced, its
    # attention's size arithmetic (aten::Int on shapes) has no converter in coremltools 9.0.
    baseline: torch.nn.Module
    if ctx.pair.family == "reference":
        baseline, exporter = model_zoo.TransformerBaseline(ctx.pair.baseline), "export"
    else:
        baseline, exporter = BaselineForConversion(ctx.pair.baseline), "trace"
    try:
        with warnings.catch_warnings(), without_fast_path():
            warnings.simplefilter("ignore")
            base_ml = to_coreml(baseline, ctx.inputs, precision=o.precision, exporter=exporter)
        ctx.baseline_path = save(base_ml, ctx.staging / f"HuggingFace_baseline_{stem}.mlpackage")
        ctx.artifacts["baseline_mlpackage"] = ctx.baseline_path.name
    except Exception as error:  # the comparison figures need it; the optimized model's checks do not
        ctx.baseline_error = f"the baseline did not convert ({type(error).__name__}: {str(error)[:200]})"
    ctx.progress("programs converted", 2, 2)


def _input_dict(ctx: Context) -> dict[str, np.ndarray]:
    return {name: x.numpy() for name, x in zip(ctx.names, ctx.inputs, strict=True)}


def coreml_parity(ctx: Context) -> None:
    from ..coreml import predict, resolve_backend

    o = ctx.options
    ctx.backend = resolve_backend(o.backend)
    if ctx.backend == "mil":
        outputs = _run_on_the_executor(ctx)
    else:
        outputs = predict(ctx.package, _input_dict(ctx), backend=ctx.backend)
    from ..coreml import load

    names = [d.name for d in load(ctx.package).get_spec().description.output]
    first = torch.from_numpy(np.asarray(outputs[names[0]])).float()
    reference = ctx.baseline_reference[0]
    real = _real_tokens(ctx)
    classification = first.dim() == 2 and real is not None and first.shape[1] != real.shape[1]
    if classification:  # class probabilities, as in the published DistilBERT test
        value = psnr(reference.softmax(-1), first.softmax(-1))
        metric = "PSNR (dB) of class probabilities: converted program vs the baseline in torch fp32"
    else:
        value = psnr(_comparable(reference, real), _comparable(_as_baseline_layout(first), real))
        metric = (
            "PSNR (dB) of the first output at real tokens: converted program vs the baseline in torch fp32"
        )
    ctx.checks.append(judged_check("coreml_parity_psnr_db", f"{metric} ({ctx.backend} backend)", value, ctx))
    ctx.details["coreml_layer_parity"] = _coreml_layer_parity(ctx)
    if o.precision == "fp16":
        _fp16_hazards(ctx)


def _coreml_layer_parity(ctx: Context) -> dict:
    """The converted program's parity per layer, against the optimized model in torch fp32 (the MIL
    executor's intermediates: Core ML exposes none, so this is the executor's figure on every platform)."""
    from ..mil.layer_parity import program_layer_parity

    try:
        rows = program_layer_parity(str(ctx.package), _input_dict(ctx), ctx.pair.optimized, tuple(ctx.inputs))
    except ValueError as error:
        return {"backend": "mil", "layers": [], "reason": str(error)}
    return {"backend": "mil", "layers": [row.to_dict() for row in rows], "reason": None}


def _run_on_the_executor(ctx: Context) -> dict:
    """``predict(..., backend="mil")``, counting the ops as they run."""
    from ..mil import MILExecutor, load_program

    executor = MILExecutor(load_program(ctx.package))
    total, done = executor.op_count, [0]

    def count(_info, _outputs):
        done[0] += 1
        ctx.progress("ops run", done[0], total)

    return executor.run(_input_dict(ctx), observe=count)


def _fp16_hazards(ctx: Context) -> None:
    ctx.progress("fp16 hazards: running the program in fp32 and fp16", 0, 1)

    def judge(name, metric, value):
        ctx.checks.append(judged_check(name, metric, value, ctx))

    fp16_hazard_checks(str(ctx.package), _input_dict(ctx), judge, ctx.details)


def fp16_hazard_checks(package: str, feed: dict, judge, details: dict, function_name: str = "main") -> None:
    """fp16_non_finite_ops and fp16_unrepresentable_constants of one call of ``package`` on ``feed``
    (``judge(name, metric, value)`` records a check), the worst ops and the hazards' text in ``details``."""
    from ..mil.hazards import UNREPRESENTABLE_KINDS, find_hazards

    report = find_hazards(package, feed, function_name=function_name)
    non_finite = sum(1 for p in report.ops_by_precision if p.psnr_db == -math.inf)
    if report.first_non_finite is not None:
        non_finite = max(non_finite, 1)
    judge(
        "fp16_non_finite_ops",
        "ops whose fp16 output holds NaN or Inf (first one in details.hazards_text)",
        non_finite,
    )
    bad_constants = [w for w in report.constant_warnings if w.kind in UNREPRESENTABLE_KINDS]
    judge(
        "fp16_unrepresentable_constants",
        "constants fp16 turns into Inf or 0 (masks at finfo.min, eps below 2**-25)",
        len(bad_constants),
    )
    # The figure that ranks the ops (each op's own loss: fp16 vs fp32 on the same inputs), so the report's
    # "worst first" order matches the numbers it shows; the drift through the fp16 run rides along.
    # A non-finite fp16 output is recorded as -1 dB; an op whose fp32 output is itself not finite has no
    # own figure and is left out.
    details["fp16_precision"] = [
        {
            "op": p.name,
            "op_type": p.op_type,
            "layer": p.module,
            "psnr_db": _finite_db(p.own_psnr_db),
            "drift_psnr_db": _finite_db(p.psnr_db),
        }
        for p in report.ops_by_precision[:20]
        if not math.isnan(p.own_psnr_db)
    ]
    details["hazards_text"] = report.render(top=10)


def _finite_db(value: float) -> float:
    return value if math.isfinite(value) else -1.0


def _attention_blocks(ctx: Context) -> int | None:
    """The layer count readiness judges copies by: None for the encoders (readiness infers it from their
    layer norms); for the encoder-decoder ``reference``, its attention blocks, since a decoder layer has
    two attentions and so two key transposes (and no embedding layer norm to infer from)."""
    if ctx.pair.family != "reference":
        return None
    transformer = ctx.pair.baseline
    return len(transformer.encoder.layers) + 2 * len(transformer.decoder.layers)


def readiness(ctx: Context) -> None:
    from ..readiness import analyze, compare, findings_by_check, readiness_checks

    layers = _attention_blocks(ctx)
    optimized = analyze(str(ctx.package), label="optimized", num_layers=layers)
    checks = readiness_checks(optimized, architecture=architecture_of(ctx))
    ctx.checks.extend(adopted_check(c, ctx) for c in checks)
    ctx.details["readiness_findings"] = {
        name: [asdict(f) for f in found] for name, found in findings_by_check(optimized).items()
    }
    ctx.details["op_counts"] = {"optimized": dict(optimized.op_counts)}
    if ctx.baseline_path is not None:
        baseline = analyze(str(ctx.baseline_path), label="baseline", num_layers=layers)
        ctx.details["op_counts"]["baseline"] = dict(baseline.op_counts)
        ctx.details["readiness"] = compare(baseline, optimized).to_dict()
    else:
        ctx.details["readiness"] = {
            "optimized": optimized.to_dict(),
            "baseline": None,
            "reason": ctx.baseline_error,
        }


def speedup_and_placement(ctx: Context) -> None:
    from ..ondevice.placement import measure_placement
    from ..ondevice.speedup import speedup_checks

    o = ctx.options
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "not measured" is recorded in the checks, with the reason
        placement = measure_placement(str(ctx.package), strict=o.strict)
        # Without a baseline, speedup_vs_baseline is recorded as not measured (with the baseline's error);
        # the ANE ratios are still measured where the device allows it.
        speed = speedup_checks(
            str(ctx.package),
            str(ctx.baseline_path) if ctx.baseline_path is not None else None,
            _input_dict(ctx),
            seq_len=o.seq_len,
            batch_size=o.batch_size,
            strict=o.strict,
            baseline_unavailable=ctx.baseline_error,
        )
    speed_checks, timings = speed.checks, speed.to_dict()["timings"]
    ctx.checks.extend(adopted_check(c, ctx) for c in [*speed_checks, *placement.checks])
    unmeasured = [c for c in speed_checks if not c.measured]
    ctx.details["speedup"] = {
        "measured": bool(timings),
        "reason": unmeasured[0].reason if unmeasured else None,
        "timings": [{"label": label, **t} for label, t in timings.items()],
    }


def compression(ctx: Context) -> None:
    from .compression_stage import compression as run_compression

    run_compression(ctx)


STAGE_FUNCTIONS = (build, torch_parity, convert, coreml_parity, readiness, speedup_and_placement, compression)
