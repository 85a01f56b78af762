"""Compress a converted program with coremltools' post-training compression (coremltools.optimize.coreml).

A recipe is resolved to one config per weight (``plan``), checked against the weights it names (layers
that exist, group and block sizes that divide the channels, forms the deployment target can hold), then
applied in coremltools' order: prune, palettize, quantize, each step on the ops whose config has it,
the second step of a joint form with ``joint_compression=True``.
"""

from __future__ import annotations

import difflib
import logging
import os
from contextlib import contextmanager

import coremltools as ct
import coremltools.optimize.coreml as cto

from ..coreml.scopes import op_modules
from ..mil.program import load_program
from .recipe import NONE, TARGETS, Config, Recipe, RecipeError, check_target, covers
from .weights import WEIGHT_THRESHOLD, Weight, producers, weights

# MLModel specification version -> the newest deployment target it implies (Core ML's spec versions)
_SPEC_TARGET = {7: "iOS16", 8: "iOS17", 9: "iOS18"}


def target_of(mlmodel) -> str:
    """The deployment target a converted model was made for (iOS15 programs read as iOS16: coremltools
    raises them to iOS16 when it compresses them)."""
    version = mlmodel.get_spec().specificationVersion
    return _SPEC_TARGET.get(version, "iOS16" if version < 7 else TARGETS[-1])


def _channel_axis(weight: Weight) -> tuple[int, int]:
    """(output-channel axis, input-channel axis) as coremltools' compressors read them."""
    if weight.op_type == "linear" or weight.op_type == "conv":
        return 0, 1
    if weight.op_type == "gather":
        return 0, 1
    return (1, 0) if weight.input == "y" else (0, 1)  # matmul: coremltools treats y as (in, out)


def check_weight(config: Config, weight: Weight, where: str) -> None:
    """Group and block sizes must divide the channels they cut (coremltools' compressors need it)."""
    out_axis, in_axis = _channel_axis(weight)
    if config.palettize is not None and config.palettize.group_size:
        group, channels = config.palettize.group_size, weight.shape[out_axis]
        if channels % group:
            allowed = [d for d in range(1, channels + 1) if channels % d == 0]
            raise RecipeError(
                f"{where} {config.text()}: group size {group} does not divide the {channels} output channels "
                f"of {weight.op} {weight.shape}; allowed: a divisor of {channels} such as {allowed[-6:]}, "
                'or leave that layer out in a recipe (recipe=FILE, [compression.op_types] gather = "none")'
            )
    if config.quantize is not None and config.quantize.block_size and len(weight.shape) > in_axis:
        block, channels = config.quantize.block_size, weight.shape[in_axis]
        if channels % block:
            allowed = [d for d in range(1, channels + 1) if channels % d == 0]
            raise RecipeError(
                f"{where} {config.text()}: block size {block} does not divide the {channels} input channels "
                f"of {weight.op} {weight.shape}; allowed: a divisor of {channels} such as {allowed[-6:]}"
            )


def plan(program_or_model, recipe: Recipe, modules: dict | None = None) -> dict[str, Config]:
    """op name -> the config each weight-carrying op gets (``none`` ones left out). ``modules``: op name ->
    module path of its weight (``layers.weight_layers``; default: the ops' torch scopes). Raises
    ``RecipeError`` for a recipe layer that names no weight (as a MIL op name or a module path covering
    one), or a size that does not divide."""
    program = load_program(program_or_model)
    if modules is None:
        modules = op_modules(program_or_model) if isinstance(program_or_model, ct.models.MLModel) else {}
    found = weights(program)
    paths = sorted({str(modules[w.op]) for w in found if modules.get(w.op)})
    ops = {w.op for w in found}
    missing = [name for name in recipe.layers if name not in ops and not any(covers(name, p) for p in paths)]
    if missing:
        close = difflib.get_close_matches(missing[0], paths + sorted(ops), n=3)
        raise RecipeError(
            f"recipe layer {missing[0]!r}: the model has no such layer (weights over {WEIGHT_THRESHOLD} "
            f"elements, by torch module path or MIL op name); closest: {close or paths[:3]}"
        )
    chosen = {}
    for weight in found:
        config = recipe.config_for(weight.op, weight.op_type, modules.get(weight.op))
        if config.is_none:
            continue
        check_weight(config, weight, "--compress")
        chosen[weight.op] = config
    return chosen


def _palettizer(step) -> cto.OpPalettizerConfig:
    if step.group_size:
        return cto.OpPalettizerConfig(
            nbits=step.nbits,
            mode=step.mode,
            granularity="per_grouped_channel",
            group_size=step.group_size,
            weight_threshold=WEIGHT_THRESHOLD,
        )
    return cto.OpPalettizerConfig(nbits=step.nbits, mode=step.mode, weight_threshold=WEIGHT_THRESHOLD)


def _quantizer(step, joint_with_palette: bool) -> cto.OpLinearQuantizerConfig:
    mode = "linear_symmetric" if step.symmetric else "linear"
    if joint_with_palette:  # the look-up table is quantized per tensor (coremltools' joint rule)
        return cto.OpLinearQuantizerConfig(mode=mode, dtype=step.dtype, granularity="per_tensor")
    if step.block_size:
        return cto.OpLinearQuantizerConfig(
            mode=mode,
            dtype=step.dtype,
            granularity="per_block",
            block_size=step.block_size,
            weight_threshold=WEIGHT_THRESHOLD,
        )
    return cto.OpLinearQuantizerConfig(mode=mode, dtype=step.dtype, weight_threshold=WEIGHT_THRESHOLD)


@contextmanager
def _quiet():
    """coremltools prints a progress bar per pass and logs per op: quiet during compression only."""
    logger = logging.getLogger("coremltools")
    previous, tqdm = logger.level, os.environ.get("TQDM_DISABLE")
    logger.setLevel(logging.ERROR)
    os.environ["TQDM_DISABLE"] = "1"
    try:
        yield
    finally:
        logger.setLevel(previous)
        if tqdm is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = tqdm


def compress_ops(mlmodel, configs: dict[str, Config]):
    """Apply ``configs`` (op name -> config) to ``mlmodel``; returns the compressed MLModel."""
    model = mlmodel
    done: set[str] = set()
    steps = (
        (
            "prune",
            cto.prune_weights,
            lambda c: cto.OpMagnitudePrunerConfig(
                target_sparsity=c.prune.sparsity, weight_threshold=WEIGHT_THRESHOLD
            ),
        ),
        ("palettize", cto.palettize_weights, lambda c: _palettizer(c.palettize)),
        ("quantize", cto.linear_quantize_weights, lambda c: _quantizer(c.quantize, c.palettize is not None)),
    )
    with _quiet():
        for name, function, make in steps:
            ops = [op for op, c in configs.items() if getattr(c, name) is not None]
            if not ops:
                continue
            # Keyed by the weight's producer (its const, or the outermost constexpr of a compressed one):
            # keyed by the consuming op, a const it shares with another op (a bias) conflicts.
            producer = producers(model)
            chosen = {producer[op]: make(configs[op]) for op in ops}
            joint = bool(done & set(ops))
            config = cto.OptimizationConfig(op_name_configs=chosen)
            model = function(model, config, joint_compression=joint) if joint else function(model, config)
            done |= set(ops)
    return model


def compress(mlmodel, recipe: Recipe, modules: dict | None = None):
    """``mlmodel`` (a converted ML Program) compressed as ``recipe`` says (``modules``: as for ``plan``).
    Everything is checked first: a form the model's deployment target cannot hold, a layer it lacks, a
    size that does not divide."""
    check_target(recipe, target_of(mlmodel))
    configs = plan(mlmodel, recipe, modules)
    if not configs:
        raise RecipeError(
            f"--compress {recipe.source}: no weight of the model gets a compression (weights with at least "
            f"{WEIGHT_THRESHOLD} elements of ops {sorted(set(['conv', 'linear', 'matmul', 'gather']))})"
        )
    return compress_ops(mlmodel, configs)


__all__ = ["NONE", "compress", "compress_ops", "plan", "target_of"]
