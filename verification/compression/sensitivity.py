"""Per-layer sensitivity to a compression config, and a mixed-bit recipe that meets a PSNR target.

Nothing is reconverted and coremltools runs once per config: every weight of the converted program is
compressed at the config in one call, the dense values are read back (coremltools' value inference),
and then, one layer (or group of layers) at a time, the uncompressed program runs in the MIL executor
with that layer's weights swapped for their compressed values (``MILExecutor.replaced_constants``). A
layer's cost is the dB its compression alone takes from the program's PSNR against torch fp32.

The mixed-bit search is greedy over that ranking (as ml-stable-diffusion's mixed-bit pre-analysis is):
the k most costly layers get a fallback config (8 bits of the same kind by default, or none), the others
the config; k is the smallest count whose swapped-in run meets the target (a bisection, which assumes
the PSNR grows with k; each probe is one run). The chosen recipe names its layers by torch module path
(``layers.weight_layers``), as ``ane-verify run --compress recipe=FILE`` reads them; it is then compressed
for real by coremltools exactly as ``run`` would plan it, and that measured PSNR is the one reported.

A cost is a difference of two PSNRs against torch, each measured on a few inputs: where a layer's
compression error is not far above the fp16 program's own error, the two partly cancel or add by chance,
and the cost can come out below zero. Each layer therefore also carries the PSNR of its swapped-in
program against the uncompressed program (the compression's effect alone, never confounded with fp16),
and the result says which costs are below zero and why (``noise_note``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..metrics import psnr
from ..mil import MILExecutor
from .apply import check_weight, compress_ops, plan
from .compare import _comparable
from .layers import weight_layers
from .recipe import NONE, Config, Palettize, Quantize, Recipe, covers
from .weights import dense_values, weights


@dataclass
class LayerCost:
    layer: str  # torch module path of the group (a MIL op name where the origin is unknown)
    ops: list  # MIL op names in the group
    elements: int
    psnr_db: float  # the program with only this group compressed, vs torch fp32
    cost_db: float  # uncompressed program's PSNR minus psnr_db
    vs_program_db: float = float("inf")  # the same program vs the uncompressed program

    def to_dict(self) -> dict:
        return {
            "layer": self.layer,
            "ops": self.ops,
            "elements": self.elements,
            "psnr_db": round(self.psnr_db, 2),
            "cost_db": round(self.cost_db, 2),
            "psnr_vs_uncompressed_program_db": round(self.vs_program_db, 2),
        }


@dataclass
class MixedBitResult:
    target_psnr_db: float
    fallback: str
    fallback_layers: list  # layer names given the fallback, most costly first
    recipe: Recipe
    predicted_psnr_db: float  # swapped-in run at the chosen k
    measured_psnr_db: float  # coremltools' real compression of the recipe, run
    stored_bytes: float
    all_config_bytes: float  # every layer at the config (the smallest this ladder can get)
    all_fallback_bytes: float
    met: bool
    probes: list = field(default_factory=list)  # (k, psnr) tried
    layer_configs: dict = field(default_factory=dict)  # every ranked layer -> the config it gets

    def to_dict(self) -> dict:
        return {
            "target_psnr_db": self.target_psnr_db,
            "fallback": self.fallback,
            "fallback_layers": self.fallback_layers,
            "recipe": self.recipe.to_dict(),
            "predicted_psnr_db": round(self.predicted_psnr_db, 2),
            "measured_psnr_db": round(self.measured_psnr_db, 2),
            "stored_bytes": int(self.stored_bytes),
            "all_config_bytes": int(self.all_config_bytes),
            "all_fallback_bytes": int(self.all_fallback_bytes),
            "met": self.met,
            "probes": [[k, round(v, 2)] for k, v in self.probes],
            "layer_configs": self.layer_configs,
        }


@dataclass
class Sensitivity:
    config: str
    baseline_psnr_db: float  # the uncompressed program vs torch fp32
    all_compressed_psnr_db: float  # every layer at the config, swapped in
    layers: list  # LayerCost, most costly first
    seconds: float
    mixed: MixedBitResult | None = None
    inputs: int = 0  # how many inputs every PSNR is measured over
    values: int = 0  # output values compared per PSNR (over those inputs, real tokens only)

    @property
    def noise_note(self) -> str | None:
        """Why some costs are below zero, or None when none is."""
        negative = [c for c in self.layers if c.cost_db < 0]
        if not negative:
            return None
        low = min(negative, key=lambda c: c.cost_db)
        return (
            f"{len(negative)} of {len(self.layers)} layers cost less than 0 dB (down to "
            f"{low.cost_db:.2f} dB, {low.layer}): compressing one alone moved the output closer to "
            "torch by chance. Its error "
            f"({low.vs_program_db:.1f} dB from the uncompressed program) is not far above the fp16 "
            f"program's own ({self.baseline_psnr_db:.1f} dB from torch), and on {self.inputs} inputs "
            f"({self.values} output values) the two partly cancel: costs of that size, either sign, are "
            "noise. Measure on more inputs (--examples) to separate them; the column against the "
            "uncompressed program ranks the compression's own effect."
        )

    def to_dict(self) -> dict:
        return {
            "config": self.config,
            "baseline_psnr_db": round(self.baseline_psnr_db, 2),
            "all_compressed_psnr_db": round(self.all_compressed_psnr_db, 2),
            "inputs": self.inputs,
            "output_values": self.values,
            "layers": [c.to_dict() for c in self.layers],
            "noise_note": self.noise_note,
            "seconds": round(self.seconds, 1),
            "mixed_bit": None if self.mixed is None else self.mixed.to_dict(),
        }


def default_fallback(config: Config) -> Config:
    """The next rung up for a sensitive layer: 8 bits of the same kind; uncompressed for pruning."""
    if config.prune is not None:
        return NONE
    if config.palettize is not None:
        return Config(palettize=Palettize(8, config.palettize.mode, config.palettize.group_size))
    if config.quantize is not None:
        return Config(quantize=Quantize("int8", config.quantize.symmetric, None))
    return NONE


def _layer_of(path: str | None, op: str, by: str) -> str:
    if path is None or by == "weight":
        return path or op
    parts = path.split(".")
    if "layers" in parts and parts.index("layers") + 1 < len(parts):  # one encoder layer
        return ".".join(parts[: parts.index("layers") + 2])
    return path


class _Runner:
    """Runs the uncompressed program with chosen weights swapped for compressed values."""

    def __init__(self, mlmodel, feeds, reference, reals):
        self.executor = MILExecutor(mlmodel)
        self.output = self.executor.output_names[0]
        self.feeds, self.reals = feeds, reals
        self.reference = self._flat(reference)
        self.var_of = {}
        for op in self.executor.function.operations:
            for name, var in op.inputs.items():
                if not isinstance(var, (list, tuple)):
                    self.var_of[(op.name, name)] = var.name
        self.program = self._outputs({})  # the uncompressed program's own outputs

    def _flat(self, outputs) -> np.ndarray:
        return np.concatenate(
            [_comparable(o, m).reshape(-1) for o, m in zip(outputs, self.reals, strict=True)]
        )

    def _outputs(self, values: dict) -> np.ndarray:
        with self.executor.replaced_constants({self.var_of[k]: v for k, v in values.items()}):
            outputs = [self.executor.run(feed)[self.output].astype(np.float32) for feed in self.feeds]
        return self._flat(outputs)

    def psnr(self, values: dict) -> float:
        return psnr(self.reference, self._outputs(values))

    def both(self, values: dict) -> tuple[float, float]:
        """(PSNR vs torch fp32, PSNR vs the uncompressed program)."""
        got = self._outputs(values)
        return psnr(self.reference, got), psnr(self.program, got)


def layer_sensitivity(
    mlmodel,
    config: Config,
    feeds: list[dict],
    reference: list[np.ndarray],
    *,
    real_masks: list | None = None,
    by: str = "weight",
    target_psnr_db: float | None = None,
    fallback: Config | None = None,
    model=None,
) -> Sensitivity:
    """Rank the weights (``by="weight"``) or encoder layers (``by="layer"``) of ``mlmodel`` (an uncompressed
    converted program) by the dB compressing them alone at ``config`` costs; with ``target_psnr_db``, also
    search a mixed recipe (see the module docstring). ``reference``: torch fp32 outputs (first output) for
    ``feeds``, the program's input dictionaries; ``model``: the torch model it was converted from, to name
    each weight after its parameter's module (see ``layers.weight_layers``)."""
    start = time.perf_counter()
    reals = list(real_masks) if real_masks is not None else [None] * len(feeds)
    modules = weight_layers(mlmodel, model)
    found = [w for w in weights(mlmodel)]
    for weight in found:
        check_weight(config, weight, "--compress-config")
    configs = {w.op: config for w in found}
    compressed = compress_ops(mlmodel, configs)
    values = dense_values(compressed)
    keys = [(w.op, w.input) for w in found]
    runner = _Runner(mlmodel, feeds, reference, reals)
    baseline = runner.psnr({})
    everything = runner.psnr({k: values[k] for k in keys})
    groups: dict[str, list] = {}
    for weight in found:
        groups.setdefault(_layer_of(modules.get(weight.op), weight.op, by), []).append(weight)
    if by == "weight":  # two weights with one module path (no torch model to tell them apart): name the op
        groups = {
            (f"{label} [{w.op}]" if len(members) > 1 else label): [w]
            for label, members in groups.items()
            for w in members
        }
    costs = []
    for name, members in groups.items():
        value, vs_program = runner.both({(w.op, w.input): values[(w.op, w.input)] for w in members})
        costs.append(
            LayerCost(
                name,
                [w.op for w in members],
                sum(w.count for w in members),
                value,
                baseline - value,
                vs_program,
            )
        )
    costs.sort(key=lambda c: -c.cost_db)
    result = Sensitivity(config.text(), baseline, everything, costs, 0.0)
    result.inputs, result.values = len(feeds), int(runner.reference.size)
    if target_psnr_db is not None:
        result.mixed = _mixed_bit(
            mlmodel,
            config,
            fallback or default_fallback(config),
            costs,
            runner,
            values,
            compressed,
            target_psnr_db,
            modules,
        )
    result.seconds = time.perf_counter() - start
    return result


def recipe_names(cost: LayerCost, modules: dict) -> list[str]:
    """How a recipe names the group: its module path where that covers exactly the group's weights
    (``backbone.layers.4``, ``...ffn.fc1``), else its MIL op names."""
    inside = {op for op, path in modules.items() if covers(cost.layer, path)}
    return [cost.layer] if inside == set(cost.ops) else list(cost.ops)


def _stored_bits(model) -> dict:
    return {w.op: w.stored_bits for w in weights(model)}


def _mixed_bit(mlmodel, config, fallback, costs, runner, values, compressed, target, modules):
    ops_of = [c.ops for c in costs]
    if fallback.is_none:
        fallback_values = {(w.op, w.input): None for w in weights(mlmodel)}
        fallback_bits = _stored_bits(mlmodel)
        fallback_model = mlmodel
    else:
        fallback_model = compress_ops(mlmodel, {w.op: fallback for w in weights(mlmodel)})
        fallback_values = dense_values(fallback_model)
        fallback_bits = _stored_bits(fallback_model)
    config_bits = _stored_bits(compressed)
    keys = {w.op: (w.op, w.input) for w in weights(mlmodel)}

    def swapped(k: int) -> dict:
        promoted = {op for ops in ops_of[:k] for op in ops}
        chosen = {}
        for op, key in keys.items():
            if op in promoted:
                if fallback_values.get(key) is not None:
                    chosen[key] = fallback_values[key]
            else:
                chosen[key] = values[key]
        return chosen

    probes: list = []

    def measure(k: int) -> float:
        value = runner.psnr(swapped(k))
        probes.append((k, value))
        return value

    low, high = 0, len(costs)
    if measure(low) >= target:
        high = 0
    elif measure(high) < target:
        low = high  # even every layer at the fallback misses the target
    while high - low > 1:
        middle = (low + high) // 2
        if measure(middle) >= target:
            high = middle
        else:
            low = middle
    k = high
    predicted = dict(probes).get(k)
    if predicted is None:
        predicted = measure(k)
    promoted = [c.layer for c in costs[:k]]
    recipe = Recipe(
        config,
        {},
        {name: fallback for cost in costs[:k] for name in recipe_names(cost, modules)},
        source=f"mixed-bit search: {config.text()}, fallback {fallback.text()}",
    )
    per_op = plan(mlmodel, recipe, modules)  # what ane-verify run --compress recipe=FILE will compress
    layers = {op for ops in ops_of[:k] for op in ops}
    searched = {op: fallback if op in layers else config for op in keys}
    if per_op != {op: c for op, c in searched.items() if not c.is_none}:
        raise RuntimeError(f"mixed-bit search: the recipe {recipe.to_dict()} does not plan what was searched")
    real = compress_ops(mlmodel, per_op)
    plain_program = MILExecutor(real)
    outputs = [plain_program.run(feed)[runner.output].astype(np.float32) for feed in runner.feeds]
    got = np.concatenate([_comparable(o, m).reshape(-1) for o, m in zip(outputs, runner.reals, strict=True)])
    measured = psnr(runner.reference, got)
    stored = sum(fallback_bits[op] if op in layers else config_bits[op] for op in keys) / 8
    return MixedBitResult(
        target_psnr_db=target,
        fallback=fallback.text(),
        fallback_layers=promoted,
        recipe=recipe,
        predicted_psnr_db=predicted,
        measured_psnr_db=measured,
        stored_bytes=stored,
        all_config_bytes=sum(config_bits.values()) / 8,
        all_fallback_bytes=sum(fallback_bits.values()) / 8,
        met=measured >= target,
        probes=probes,
        layer_configs={c.layer: (fallback if i < k else config).text() for i, c in enumerate(costs)},
    )
