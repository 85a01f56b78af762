"""The one compression recipe format, shared by the API, the CLI and the report.

A config is written ``KIND:VALUE[:key=value ...]``, joint forms with ``+``:

==============================  =====================================================================
``palettize:4``                 4-bit look-up table per tensor, k-means (``mode=uniform`` for a uniform
                                grid, ``group=16`` for one table per 16 output channels)
``quantize:int8``               int8 per output channel, symmetric (``mode=asymmetric`` adds offsets)
``quantize:int4:block=32``      int4 per block of 32 input channels (iOS18)
``prune:0.5``                   50% of the weights set to zero by magnitude (a sparse weight)
``prune:0.5+palettize:4``       pruned, then the non-zero values palettized (iOS18)
``prune:0.5+quantize:int8``     pruned, then the non-zero values quantized (iOS18)
``palettize:4+quantize:int8``   palettized, then the look-up table itself quantized, per tensor (iOS18)
``none``                        left as it is (fp16)
==============================  =====================================================================

A ``Recipe`` gives a default config and overrides per MIL op type or per layer (a torch module path,
covering every weight under it, or a MIL op name). As TOML (``recipe=FILE`` on the command line)::

    [compression]
    default = "palettize:4"
    [compression.op_types]
    gather = "none"
    [compression.layers]
    "backbone.layers.0.ffn.fc1" = "palettize:8"
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import tomllib

# coremltools 9 (coremltools.optimize.coreml): the LUT index types of constexpr_lut_to_dense. iOS16 packs
# indices of 1, 2, 4, 6 or 8 bits; iOS18 adds 3 bits (uint3).
PALETTE_BITS = (1, 2, 3, 4, 6, 8)
PALETTE_BITS_IOS16 = (1, 2, 4, 6, 8)
PALETTE_MODES = ("kmeans", "uniform")
QUANTIZE_DTYPES = ("int8", "int4")
QUANTIZE_MODES = {"symmetric": "linear_symmetric", "asymmetric": "linear"}
TARGETS = ("iOS16", "iOS17", "iOS18")


class RecipeError(ValueError):
    """A compression option or recipe is not one coremltools (or the deployment target) accepts."""


@dataclass(frozen=True)
class Palettize:
    nbits: int
    mode: str = "kmeans"
    group_size: int | None = None  # one table per ``group_size`` output channels; None: one per tensor

    def text(self) -> str:
        extra = "" if self.mode == "kmeans" else f":mode={self.mode}"
        return f"palettize:{self.nbits}{extra}" + (f":group={self.group_size}" if self.group_size else "")


@dataclass(frozen=True)
class Quantize:
    dtype: str
    symmetric: bool = True
    block_size: int | None = None  # None: per output channel

    @property
    def nbits(self) -> int:
        return 8 if self.dtype == "int8" else 4

    def text(self) -> str:
        extra = "" if self.symmetric else ":mode=asymmetric"
        return f"quantize:{self.dtype}{extra}" + (f":block={self.block_size}" if self.block_size else "")


@dataclass(frozen=True)
class Prune:
    sparsity: float

    def text(self) -> str:
        return f"prune:{self.sparsity:g}"


@dataclass(frozen=True)
class Config:
    """One weight's compression: up to one step of each kind, applied prune -> palettize -> quantize."""

    prune: Prune | None = None
    palettize: Palettize | None = None
    quantize: Quantize | None = None

    @property
    def is_none(self) -> bool:
        return self.prune is None and self.palettize is None and self.quantize is None

    def text(self) -> str:
        steps = [s.text() for s in (self.prune, self.palettize, self.quantize) if s is not None]
        return "+".join(steps) or "none"

    @property
    def minimum_target(self) -> str:
        """The oldest deployment target whose ops can hold this form."""
        steps = sum(s is not None for s in (self.prune, self.palettize, self.quantize))
        if steps > 1:
            return "iOS18"  # joint forms: constexpr_lut_to_sparse, constexpr_sparse_blockwise_shift_scale
        if self.palettize is not None and (self.palettize.group_size or self.palettize.nbits == 3):
            return "iOS18"
        if self.quantize is not None and (self.quantize.dtype == "int4" or self.quantize.block_size):
            return "iOS18"
        return "iOS16"

    @property
    def nominal_bits(self) -> float:
        """Bits per weight (16 when uncompressed), with a per-block quantization's fp16 scale (and offset)
        per block counted in; look-up tables and per-channel scales are left out (a few % at most)."""
        if self.palettize is not None:
            bits = float(self.palettize.nbits)
        elif self.quantize is not None:
            bits = float(self.quantize.nbits)
            if self.quantize.block_size:
                offset = 0 if self.quantize.symmetric else self.quantize.nbits
                bits += (16 + offset) / self.quantize.block_size
        else:
            bits = 16.0
        if self.prune is None:
            return bits
        # one mask bit per weight; pruned + quantized weights carry the mask twice: coremltools 9 gives the
        # constexpr_sparse_blockwise_shift_scale and the constexpr_sparse_to_dense after it a const mask
        # each (measured: two mask consts per weight, and weight.bin holds both)
        masks = 2 if self.quantize is not None and self.palettize is None else 1
        return bits * (1 - self.prune.sparsity) + masks

    def __str__(self) -> str:
        return self.text()


NONE = Config()


def _int(option: str, key: str, value: str, allowed: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise RecipeError(f"{option}: {key} {value!r} is not an integer; allowed: {allowed}") from None
    if number < 1:
        raise RecipeError(f"{option}: {key} {number} must be positive; allowed: {allowed}")
    return number


def _options(option: str, parts: list[str], allowed: tuple) -> dict:
    found = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep or key not in allowed:
            raise RecipeError(
                f"{option}: unknown setting {part!r}; allowed: {', '.join(f'{k}=...' for k in allowed)}"
            )
        found[key] = value
    return found


def _step(option: str, text: str):
    kind, _, rest = text.partition(":")
    parts = rest.split(":") if rest else []
    if kind == "palettize":
        if not parts:
            raise RecipeError(
                f"{option}: palettize needs a bit width, e.g. palettize:4; allowed {PALETTE_BITS}"
            )
        nbits = _int(option, "bit width", parts[0], str(PALETTE_BITS))
        if nbits not in PALETTE_BITS:
            raise RecipeError(f"{option}: palettize bit width {nbits} is not one of {PALETTE_BITS}")
        settings = _options(option, parts[1:], ("mode", "group"))
        mode = settings.get("mode", "kmeans")
        if mode not in PALETTE_MODES:
            raise RecipeError(f"{option}: palettize mode {mode!r} is not one of {PALETTE_MODES}")
        group = settings.get("group")
        group_size = _int(option, "group", group, "a positive channel count") if group else None
        return Palettize(nbits, mode, group_size)
    if kind == "quantize":
        if not parts or parts[0] not in QUANTIZE_DTYPES:
            got = parts[0] if parts else "nothing"
            raise RecipeError(f"{option}: quantize dtype {got!r} is not one of {QUANTIZE_DTYPES}")
        settings = _options(option, parts[1:], ("mode", "block"))
        mode = settings.get("mode", "symmetric")
        if mode not in QUANTIZE_MODES:
            raise RecipeError(f"{option}: quantize mode {mode!r} is not one of {tuple(QUANTIZE_MODES)}")
        block = settings.get("block")
        block_size = _int(option, "block", block, "a positive input-channel count") if block else None
        return Quantize(parts[0], mode == "symmetric", block_size)
    if kind == "prune":
        try:
            sparsity = float(parts[0]) if len(parts) == 1 else None
        except ValueError:
            sparsity = None
        if sparsity is None or not 0.0 < sparsity < 1.0:
            raise RecipeError(f"{option}: prune needs a sparsity in (0, 1), e.g. prune:0.5; got {text!r}")
        return Prune(sparsity)
    raise RecipeError(
        f"{option}: unknown compression {kind!r} in {text!r}; allowed: palettize:BITS, quantize:int8|int4, "
        "prune:SPARSITY, joined with '+', or none"
    )


def parse_config(text: str, option: str = "--compress") -> Config:
    """``"palettize:4"``, ``"quantize:int4:block=32"``, ``"prune:0.5+palettize:4"`` ... as a ``Config``."""
    text = text.strip()
    if text == "none":
        return NONE
    steps: dict = {}
    for piece in text.split("+"):
        step = _step(option, piece.strip())
        name = type(step).__name__.lower()
        if name in steps:
            raise RecipeError(f"{option}: {text!r} names {name} twice")
        steps[name] = step
    config = Config(**steps)
    if config.quantize is not None and config.palettize is not None and config.quantize.block_size:
        raise RecipeError(
            f"{option}: {text!r}: a palettized weight's look-up table is quantized per tensor only "
            "(coremltools' joint palettize+quantize); drop block="
        )
    if config.quantize is not None and config.palettize is not None and config.prune is not None:
        raise RecipeError(f"{option}: {text!r}: coremltools joins at most two forms")
    return config


def covers(layer: str, path: str | None) -> bool:
    """Whether the recipe layer ``layer`` (a module path) names the weight whose module path is ``path``:
    the module itself or one under it."""
    return path is not None and (path == layer or path.startswith(layer + "."))


def most_specific(names, op: str, path: str | None) -> str | None:
    """The recipe layer among ``names`` that names this weight: its MIL op name, else the longest module
    path covering ``path``; None if none does."""
    if op in names:
        return op
    return max((name for name in names if covers(name, path)), key=len, default=None)


@dataclass(frozen=True)
class Recipe:
    """Which weights get which config: ``layers`` over ``op_types`` (MIL op types: conv, linear, matmul,
    gather) over ``default``. A layer is a MIL op name or a torch module path, which covers every weight
    under that module (``backbone.layers.4`` a whole encoder layer); the most specific layer wins."""

    default: Config = NONE
    op_types: dict = field(default_factory=dict)
    layers: dict = field(default_factory=dict)
    source: str = ""  # how it was given: the --compress text or the recipe file

    def config_for(self, op_name: str, op_type: str, module_path: str | None = None) -> Config:
        layer = most_specific(self.layers, op_name, module_path)
        if layer is not None:
            return self.layers[layer]
        return self.op_types.get(op_type, self.default)

    @property
    def configs(self) -> list[Config]:
        return [self.default, *self.op_types.values(), *self.layers.values()]

    @property
    def minimum_target(self) -> str:
        targets = [c.minimum_target for c in self.configs if not c.is_none]
        return max(targets, key=TARGETS.index, default="iOS16")

    def to_dict(self) -> dict:
        return {
            "default": self.default.text(),
            "op_types": {k: v.text() for k, v in self.op_types.items()},
            "layers": {k: v.text() for k, v in self.layers.items()},
            "source": self.source,
        }

    def with_layers(self, layers: dict) -> Recipe:
        return replace(self, layers={**self.layers, **layers})


def _quoted(text: str) -> str:
    return json.dumps(text)  # a TOML basic string: JSON's escapes are TOML's


def recipe_toml(recipe: Recipe, header: str = "", notes: dict | None = None) -> str:
    """The recipe as a file ``load_recipe`` reads back to the same recipe; ``header``: comment lines on
    top, ``notes``: layer -> a comment after its line."""
    notes = notes or {}
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += ["[compression]", f"default = {_quoted(recipe.default.text())}"]
    for table, entries in (("op_types", recipe.op_types), ("layers", recipe.layers)):
        if entries:
            lines += ["", f"[compression.{table}]"]
        for name, config in entries.items():
            note = f"  # {notes[name]}" if name in notes else ""
            lines.append(f"{_quoted(name)} = {_quoted(config.text())}{note}")
    return "\n".join(lines) + "\n"


def load_recipe(path: str | Path) -> Recipe:
    """A recipe from a TOML file with a ``[compression]`` table (see the module docstring)."""
    path = Path(path)
    option = f"recipe={path}"
    try:
        table = tomllib.loads(path.read_text())
    except OSError as error:
        raise RecipeError(f"{option}: cannot read the recipe ({error.strerror})") from None
    except tomllib.TOMLDecodeError as error:
        raise RecipeError(f"{option}: not valid TOML ({error})") from None
    section = table.get("compression")
    if not isinstance(section, dict):
        raise RecipeError(f"{option}: expected a [compression] table with default, op_types, layers")
    unknown = set(section) - {"default", "op_types", "layers"}
    if unknown:
        raise RecipeError(f"{option}: unknown keys {sorted(unknown)}; allowed: default, op_types, layers")

    def configs(name: str) -> dict:
        entries = section.get(name, {})
        if not isinstance(entries, dict) or not all(isinstance(v, str) for v in entries.values()):
            raise RecipeError(f"{option}: [compression.{name}] maps names to config strings")
        return {k: parse_config(v, f"{option} [{name}] {k!r}") for k, v in entries.items()}

    default = section.get("default", "none")
    if not isinstance(default, str):
        raise RecipeError(f"{option}: default must be a config string such as 'palettize:4'")
    return Recipe(
        parse_config(default, f"{option} default"), configs("op_types"), configs("layers"), source=str(path)
    )


def parse_compress(text: str) -> Recipe:
    """The value of ``--compress``: a config applied to every weight, or ``recipe=FILE``."""
    if text.startswith("recipe="):
        return load_recipe(text[len("recipe=") :])
    return Recipe(parse_config(text), source=text)


def check_target(recipe: Recipe, target: str) -> None:
    """Raise ``RecipeError`` if ``target`` (iOS16..iOS18) cannot hold a form the recipe asks for."""
    if target not in TARGETS:
        raise RecipeError(f"deployment target {target!r} is not one of {TARGETS}")
    for config in recipe.configs:
        if config.is_none:
            continue
        if TARGETS.index(config.minimum_target) > TARGETS.index(target):
            raise RecipeError(
                f"--compress {config.text()}: needs deployment target {config.minimum_target} or newer "
                f"(per-block int4, int4, grouped or 3-bit palettes and joint forms exist from iOS18), got "
                f"{target}; allowed at {target}: palettize:{'|'.join(map(str, PALETTE_BITS_IOS16))} per "
                "tensor, quantize:int8 per channel, prune:SPARSITY"
            )
