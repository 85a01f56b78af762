"""``ane-verify run --compress CONFIG``: compress the converted program, prove it (three-way comparison,
size, gates), and ``ane-verify sensitivity``: rank layers by the dB a config costs each.

The recipe is parsed and checked against the deployment target when the command line is read, and its
layer names and group / block sizes against the torch model before converting, so bad input fails before
any conversion (exit 2) and nothing is written.
"""

from __future__ import annotations

import math

import torch

from .. import thresholds
from ..compression.apply import compress, plan
from ..compression.compare import three_way
from ..compression.layers import weight_layers
from ..compression.readiness import ane_support
from ..compression.recipe import Recipe, RecipeError
from ..compression.weights import WEIGHT_THRESHOLD, size_summary, weights
from . import gate_config
from .context import Context
from .refusals import parse_options  # noqa: F401 (re-exported)

EXAMPLES = 4  # inputs per comparison: the run's own, then seeded others with the same padding


def _torch_weights(model: torch.nn.Module) -> dict[str, tuple]:
    return {
        name.rsplit(".", 1)[0]: tuple(p.shape)
        for name, p in model.named_parameters()
        if p.numel() >= WEIGHT_THRESHOLD and name.endswith("weight")
    }


def check_model(recipe: Recipe, model: torch.nn.Module) -> None:
    """Before converting: recipe layers that are torch module paths must exist; group and block sizes of
    the default config must divide the channels of every weight coremltools will compress."""
    modules = dict(model.named_modules())
    for name in recipe.layers:
        if "." in name and name not in modules:
            import difflib

            close = difflib.get_close_matches(name, list(modules), n=3)
            raise RecipeError(f"recipe layer {name!r}: the model has no such module; closest: {close}")
    config = recipe.default
    for path, shape in _torch_weights(model).items():
        if path in recipe.layers or len(shape) < 2:
            continue
        kind = type(modules.get(path)).__name__
        if kind == "Embedding" and "gather" in recipe.op_types:
            continue
        group = config.palettize.group_size if config.palettize else None
        if group and shape[0] % group:
            raise RecipeError(
                f"--compress {config.text()}: group size {group} does not divide the {shape[0]} output "
                f"channels of {path} {shape}; allowed: a divisor of {shape[0]}, or leave it out in a recipe "
                '(recipe=FILE, [compression.op_types] gather = "none" for embeddings)'
            )
        block = config.quantize.block_size if config.quantize else None
        if block and shape[1] % block:
            raise RecipeError(
                f"--compress {config.text()}: block size {block} does not divide the {shape[1]} input "
                f"channels of {path} {shape}; allowed: a divisor of {shape[1]}"
            )


def comparison_examples(ctx: Context) -> list[tuple]:
    """The run's inputs, then seeded token ids of the same shape and padding (the encoders); the
    reference Transformer's float inputs are compared on the run's own inputs only."""
    first = ctx.inputs
    if ctx.pair.family == "reference":
        return [first]
    generator = torch.Generator().manual_seed(14)
    vocab = getattr(getattr(ctx.pair.baseline, "config", None), "vocab_size", 100)
    found = [first]
    for _ in range(EXAMPLES - 1):
        ids = torch.randint(3, vocab, tuple(first[0].shape), generator=generator, dtype=first[0].dtype)
        found.append((ids, *first[1:]))
    return found


def _judged(name: str, metric: str, value, default: float, ctx: Context) -> dict:
    """A compression check judged like every other (``context.judged_check``): the user's threshold with
    the file or flag it came from, else ``default``, the value ``verification.thresholds`` gives for
    this recipe, with source "default"."""
    overrides = ctx.options.overrides
    if name in overrides:
        threshold = overrides[name]
        source = overrides.source(name) if isinstance(overrides, gate_config.Thresholds) else "RunOptions"
    else:
        threshold, source = default, gate_config.DEFAULT_SOURCE
    raw = {
        "name": name,
        "metric": metric,
        "value": value,
        "threshold": threshold,
        "passed": None,
        "measured": True,
    }
    judged = gate_config.evaluate(raw, threshold, strict=ctx.options.strict, source=source)
    if isinstance(value, float) and not math.isfinite(value):
        judged["value"] = str(value)
    return judged


def _psnr_bar(bits: float) -> str:
    """Where the default compression_psnr_db bar comes from (verification.thresholds)."""
    if bits >= 8:
        return "bar: Core AI's published > 55 dB for 8-bit weights"
    return f"bar: Core AI's published >= 35 dB for 4-bit weights ({bits:.2f} nominal bits; none lower)"


def _compressed_bits_per_weight(compressed, configs: dict) -> float:
    """Stored bits per weight over the weights the recipe compresses (the ones it leaves dense excluded)."""
    chosen = [w for w in weights(compressed) if w.op in configs]
    return round(sum(w.stored_bits for w in chosen) / max(1, sum(w.count for w in chosen)), 3)


def nominal_bits(configs: dict, program) -> float:
    """The recipe's bits per compressed weight, weighted by element count (16 for a weight left dense)."""
    counts = {w.op: w.count for w in weights(program)}
    total = sum(counts[op] for op in configs)
    return sum(c.nominal_bits * counts[op] for op, c in configs.items()) / total if total else 16.0


def compression(ctx: Context) -> None:
    from ..coreml import load, save

    recipe: Recipe | None = getattr(ctx.options, "recipe", None)
    if recipe is None:
        return
    mlmodel = load(ctx.package)
    layers = weight_layers(mlmodel, ctx.pair.optimized)  # the query projection as q_proj
    configs = plan(mlmodel, recipe, layers)
    compressed = compress(mlmodel, recipe, layers)
    path = save(compressed, ctx.staging / f"{ctx.package.stem}_compressed.mlpackage")
    ctx.artifacts["compressed_mlpackage"] = path.name
    examples = comparison_examples(ctx)
    reals = None if ctx.pair.family == "reference" else [x[1].bool().numpy() for x in examples]
    result = three_way(ctx.pair.optimized, examples, ctx.names, mlmodel, compressed, real_masks=reals)
    before, after = size_summary(mlmodel), size_summary(compressed)
    bits = nominal_bits(configs, mlmodel)
    recipe_text = recipe.source or recipe.default.text()
    ctx.checks.append(
        _judged(
            "compression_psnr_db",
            f"PSNR (dB) of the compressed program's first output vs torch fp32 ({recipe_text}; "
            f"{_psnr_bar(bits)})",
            result.compressed_vs_torch.psnr_db,
            thresholds.compression_psnr_threshold(bits),
            ctx,
        )
    )
    ctx.checks.append(
        _judged(
            "compression_program_vs_fake_psnr_db",
            "PSNR (dB): compressed program vs the torch model holding its dequantized weights (bar: what "
            "an fp16 program does against torch)",
            result.compressed_vs_fake_psnr_db,
            thresholds.COMPRESSION_PROGRAM_VS_FAKE_PSNR_DB,
            ctx,
        )
    )
    if result.task == "top-1 agreement":
        name, metric, floor = (
            "compression_top1_agreement",
            f"share of examples whose top-1 class the compressed program keeps ({len(examples)} inputs)",
            thresholds.COMPRESSION_TOP1_AGREEMENT_MIN,
        )
    else:
        name, metric, floor = (
            "compression_embedding_cosine",
            "min cosine of mean-pooled embeddings: compressed program vs torch fp32",
            thresholds.COMPRESSION_EMBEDDING_COSINE_MIN,
        )
    ctx.checks.append(_judged(name, metric, result.compressed_vs_torch.agreement, floor, ctx))
    ctx.checks.append(
        _judged(
            "compression_bits_per_weight",
            f"stored bits per compressed weight (nominal {bits:.2f}; tables, scales, masks included)",
            _compressed_bits_per_weight(compressed, configs),
            round(bits * thresholds.COMPRESSION_BITS_OVERHEAD_MAX, 3),
            ctx,
        )
    )
    ctx.details["compression"] = {
        "recipe": recipe.to_dict(),
        "deployment_target": ctx.options.deployment_target,
        "three_way": result.to_dict(),
        "size_before": before.to_dict(),
        "size_after": after.to_dict(),
        "forms": sorted({w.form for w in weights(compressed) if w.form != "dense"}),
        "ane_support": ane_support(
            sorted({op for w in weights(compressed) for op in w.form.split("+") if op != "dense"})
        ),
    }


def print_summary(details: dict, stream) -> None:
    three, before, after = details["three_way"], details["size_before"], details["size_after"]
    stream.write(
        f"compression {details['recipe']['source']}: weights {before['stored_bytes'] / 1e6:.2f} MB -> "
        f"{after['stored_bytes'] / 1e6:.2f} MB ({after['bits_per_weight']:.2f} bits/weight); PSNR vs torch: "
        f"fake-compressed {three['fake_compressed_vs_torch']['psnr_db']} dB, uncompressed program "
        f"{three['uncompressed_vs_torch']['psnr_db']} dB, compressed program "
        f"{three['compressed_vs_torch']['psnr_db']} dB\n"
    )


def sensitivity_inputs(pair, seq_len: int, batch_size: int, count: int = 2):
    """(examples, feeds, torch fp32 references, real-token masks) for ``ane-verify sensitivity``: the run's
    example inputs, then seeded token ids with the same padding; feeds are named after ``forward``'s
    arguments, as the conversion names the program's inputs."""
    import inspect

    from . import model_zoo

    first = model_zoo.example_inputs(pair, seq_len, batch_size)
    generator = torch.Generator().manual_seed(14)
    vocab = getattr(getattr(pair.baseline, "config", None), "vocab_size", 100)
    examples = [first] + [
        (
            torch.randint(3, vocab, tuple(first[0].shape), generator=generator, dtype=first[0].dtype),
            *first[1:],
        )
        for _ in range(count - 1)
    ]
    parameters = inspect.signature(pair.optimized.forward).parameters.values()
    names = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    references = []
    with torch.no_grad():
        for example in examples:
            out = pair.optimized(*example)
            out = out[0] if isinstance(out, (tuple, list)) else out
            references.append(out.float().numpy())
    feeds = [{n: x.numpy() for n, x in zip(names, e, strict=False)} for e in examples]
    return examples, feeds, references, [e[1].bool().numpy() for e in examples]


__all__ = ["compression", "parse_options", "check_model", "print_summary", "sensitivity_inputs"]
