"""Gate thresholds: defaults, overridden by ``[tool.ane-verify.thresholds]`` in the user's
``pyproject.toml`` (or the file given with ``--config``), overridden by ``--threshold NAME=VALUE`` flags.

Names are the check names of ``report.json``; an unknown name is an error, never ignored. Every
threshold carries its source (``default``, the file it was read from, or ``--threshold``) into the
output and the report, so a verdict that a ``pyproject.toml`` changed says so.

A check is judged only in its known direction (``at_least`` or ``at_most``, stored in the report with
the check). A check whose direction is unknown keeps its stored verdict: it never passes by default.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

from .. import thresholds
from ..checks import COREAI_RULE_NAMES as RULE_NAMES

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

AT_LEAST, AT_MOST = "at_least", "at_most"  # as stored in report.json's checks ("direction")
SYMBOLS = {AT_LEAST: ">=", AT_MOST: "<="}
DEFAULT_SOURCE, FLAG_SOURCE = "default", "--threshold"
# The pytest plugin's checks: failed tests per area (pytest_<area>_failures) and in the whole run.
PYTEST_FAILURES = re.compile(r"^pytest(_[A-Za-z0-9_.-]+)?_failures$")

# check name -> (direction, default threshold or None where the default depends on the run)
CHECKS: dict[str, tuple[str, float | None]] = {
    "torch_parity_psnr_db": (AT_LEAST, thresholds.MODEL_FP32_PSNR_DB),
    "coreml_parity_psnr_db": (AT_LEAST, None),  # by precision: see coreml_parity_default
    "fp16_non_finite_ops": (AT_MOST, 0),
    "fp16_unrepresentable_constants": (AT_MOST, 0),
    "readiness_layer_norms_fused": (AT_LEAST, thresholds.READINESS_LAYER_NORMS_FUSED_MIN),
    "readiness_copies_per_layer": (AT_MOST, thresholds.READINESS_COPIES_PER_LAYER_MAX),
    "readiness_copies_outside_layers": (AT_MOST, None),  # by head: readiness_copies_outside_layers_max
    "readiness_dims_within_limits": (AT_MOST, thresholds.READINESS_DIMS_OVER_LIMITS_MAX),
    "readiness_off_ane_ops": (AT_MOST, thresholds.READINESS_OFF_ANE_OPS_MAX),
    "speedup_vs_baseline": (AT_LEAST, None),  # by (seq_len, batch): thresholds.speedup_threshold
    "ane_speedup_vs_cpu_only": (AT_LEAST, None),
    "ane_speedup_vs_cpu_and_gpu": (AT_LEAST, None),
    "ane_op_share": (AT_LEAST, thresholds.ANE_OP_SHARE_MIN),
    "ane_cost_share": (AT_LEAST, thresholds.ANE_COST_SHARE_MIN),
    "ane_fallback_ops": (AT_MOST, thresholds.ANE_FALLBACK_OPS_MAX),
    # compression (verification.release.compression_stage; defaults set by the recipe's bits there)
    "compression_psnr_db": (AT_LEAST, thresholds.COMPRESSION_4BIT_PSNR_DB),
    "compression_program_vs_fake_psnr_db": (AT_LEAST, thresholds.COMPRESSION_PROGRAM_VS_FAKE_PSNR_DB),
    "compression_top1_agreement": (AT_LEAST, thresholds.COMPRESSION_TOP1_AGREEMENT_MIN),
    "compression_embedding_cosine": (AT_LEAST, thresholds.COMPRESSION_EMBEDDING_COSINE_MIN),
    "compression_bits_per_weight": (AT_MOST, 16.0),
    "compression_weights_not_as_declared": (AT_MOST, 0),  # ane-verify check --compress
    # the Core AI target (ane-verify run --target coreai; verification.coreai)
    "coreai_parity_psnr_db": (AT_LEAST, None),  # by precision: see coreai_parity_default
    "coreai_validator_non_finite_nodes": (AT_MOST, 0),
    **{name: (AT_MOST, 0) for name in RULE_NAMES},  # Core AI's Neural Engine authoring rules: none broken
    # converted decoders (ane-verify run smollm2): by precision, thresholds.decoder_threshold
    "decoder_step_psnr_db": (AT_LEAST, None),
    "decoder_argmax_agreement": (AT_LEAST, None),
    "decoder_token_agreement": (AT_LEAST, None),
    "decoder_confident_token_agreement": (AT_LEAST, None),
    "decoder_max_kl_divergence": (AT_MOST, None),
    "decoder_prefill_vs_sequential_psnr_db": (AT_LEAST, None),
    "prefill_tokens_per_second": (AT_LEAST, thresholds.DECODER_TOKENS_PER_SECOND_FLOOR),
    "decode_tokens_per_second": (AT_LEAST, thresholds.DECODER_TOKENS_PER_SECOND_FLOOR),
}


class ConfigError(ValueError):
    """A broken ``[tool.ane-verify]`` table, an unknown check name or a non-numeric threshold."""


class Thresholds(dict):
    """User thresholds (check name -> value) with ``sources`` (check name -> where the value came from:
    a file path or ``--threshold``)."""

    def __init__(self, values=None, sources=None):
        super().__init__(values or {})
        self.sources: dict[str, str] = dict(sources or {})

    def source(self, name: str) -> str:
        return self.sources.get(name, FLAG_SOURCE) if name in self else DEFAULT_SOURCE


def direction_of(check: dict | str) -> str | None:
    """``at_least`` / ``at_most`` for a known check (or a report check that stores its direction), else
    None: such a check can only keep its stored verdict."""
    if isinstance(check, dict):
        stored = check.get("direction")
        if stored in (AT_LEAST, AT_MOST):
            return stored
        name = check["name"]
    else:
        name = check
    if name in CHECKS:
        return CHECKS[name][0]
    if PYTEST_FAILURES.match(name):
        return AT_MOST
    return None


def is_known(name: str) -> bool:
    return direction_of(name) is not None


def coreml_parity_default(precision: str) -> float:
    """60 dB for fp16 programs (the reference implementation's bar); 90 dB for fp32 programs."""
    return (
        thresholds.COREML_FP16_REAL_PROBABILITIES_PSNR_DB
        if precision == "fp16"
        else thresholds.COREML_FP32_PSNR_DB
    )


def coreai_parity_default(precision: str) -> float:
    """Core AI's published bars: fp16 on device > 50 dB, a re-authored model in float32 > 70 dB."""
    return thresholds.COREAI_FP16_PSNR_DB if precision == "fp16" else thresholds.COREAI_REAUTHORED_PSNR_DB


def default_threshold(
    name: str,
    *,
    precision: str | None = None,
    seq_len: int | None = None,
    batch_size: int | None = None,
    architecture: str | None = None,
) -> float:
    direction, value = CHECKS[name]
    if value is not None:
        return value
    if name == "readiness_copies_outside_layers":
        return thresholds.readiness_copies_outside_layers_max(architecture)
    if name == "coreml_parity_psnr_db":
        return coreml_parity_default(precision or "fp16")
    if name == "coreai_parity_psnr_db":
        return coreai_parity_default(precision or "fp16")
    if name.startswith("decoder_"):
        return thresholds.decoder_threshold(name, precision or "fp16")
    return thresholds.speedup_threshold(name, seq_len or 0, batch_size or 0)


def _check_table(table, where: str) -> dict[str, float]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table of check name = number, got {type(table).__name__}")
    unknown = sorted(name for name in table if not is_known(name))
    if unknown:
        raise ConfigError(
            f"{where}: unknown check name{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; known: "
            f"{', '.join(sorted(CHECKS))}, pytest_failures, pytest_<area>_failures"
        )
    values = {}
    for name, value in table.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{where}: {name} must be a finite number, got {value!r}")
        values[name] = float(value)
    return values


def load_file(path: str | Path, *, required: bool) -> dict[str, float]:
    """Thresholds from ``[tool.ane-verify.thresholds]`` of a TOML file ({} if absent and not required)."""
    path = Path(path)
    if not path.is_file():
        if required:
            raise ConfigError(f"--config: no file at {str(path)!r}")
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
    section = data.get("tool", {}).get("ane-verify")
    if section is None:
        if required:
            raise ConfigError(f"{path}: no [tool.ane-verify] table")
        return {}
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [tool.ane-verify] must be a table")
    unknown_keys = sorted(set(section) - {"thresholds"})
    if unknown_keys:
        raise ConfigError(f"{path}: unknown keys {unknown_keys} in [tool.ane-verify] (expected 'thresholds')")
    return _check_table(section.get("thresholds", {}), f"{path} [tool.ane-verify.thresholds]")


def parse_flags(flags: list[str] | None) -> dict[str, float]:
    table = {}
    for flag in flags or []:
        name, sep, value = flag.partition("=")
        if not sep:
            raise ConfigError(f"--threshold: expected NAME=VALUE, got {flag!r}")
        try:
            table[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--threshold {name}: expected a number, got {value!r}") from None
    return _check_table(table, "--threshold")


def resolve(
    config_file: str | None, flags: list[str] | None, *, project_dir: Path | None = None
) -> Thresholds:
    """User overrides: the ``--config`` file (else ``pyproject.toml`` in ``project_dir``), then flags;
    each with its source."""
    path = Path(config_file) if config_file is not None else (project_dir or Path.cwd()) / "pyproject.toml"
    from_file = load_file(path, required=config_file is not None)
    thresholds = Thresholds(from_file, dict.fromkeys(from_file, str(path.resolve())))
    for name, value in parse_flags(flags).items():
        thresholds[name] = value
        thresholds.sources[name] = FLAG_SOURCE
    return thresholds


def passes(value: float, threshold: float, direction: str) -> bool:
    """The comparison itself: at a threshold exactly, a check passes in both directions."""
    if direction == AT_LEAST:
        return value >= threshold
    if direction == AT_MOST:
        return value <= threshold
    raise ValueError(f"direction: expected {AT_LEAST} or {AT_MOST}, got {direction!r}")


def evaluate(check: dict, threshold: float, *, strict: bool = False, source: str | None = None) -> dict:
    """The check re-judged against ``threshold`` (a new dict; never edits the given one), in its
    direction. A check of unknown direction keeps its stored threshold and verdict (and strict mode
    still fails it when it was not measured)."""
    direction = direction_of(check)
    if direction is None:
        judged = dict(check)
        if not check["measured"]:
            judged["passed"] = False if strict else None
        return judged
    judged = dict(check, threshold=threshold, direction=direction)
    if source is not None:
        judged["threshold_source"] = source
    if not check["measured"]:
        judged["passed"] = False if strict else None
        return judged
    value = float(check["value"])  # non-finite values are stored as "inf"/"-inf"/"nan" strings
    judged["passed"] = bool(passes(value, threshold, direction))  # NaN passes neither way
    return judged
