"""The layer equivalence table: every registered pair on drawn cases, worst PSNR in fp32 and fp16."""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import torch
from hypothesis import HealthCheck, Phase, given, settings

from .. import thresholds
from ..metrics import psnr
from .pairs import REGISTRY, LayerPair
from .runner import run_pair


@dataclass(frozen=True)
class Row:
    pair: LayerPair
    cases: int
    fp32_min_psnr_db: float
    fp16_min_psnr_db: float
    seconds: float

    @property
    def passed(self) -> bool:
        return (
            self.fp32_min_psnr_db >= thresholds.LAYER_FP32_PSNR_DB
            and self.fp16_min_psnr_db >= thresholds.LAYER_FP16_PSNR_DB
        )


def _compared_psnr(pair: LayerPair, case, precision: str) -> float:
    reference, output = run_pair(pair, case, precision)
    positions = pair.compared_positions(case)
    if positions is not None:
        if not bool(positions.any()):
            return math.inf
        reference, output = reference[positions], output[positions]
    value = psnr(reference, output)
    return value if math.isfinite(value) else -math.inf


def measure(pair: LayerPair, examples: int) -> Row:
    """Worst PSNR over ``examples`` drawn cases per precision (derandomized: the same cases each run)."""
    worst = {"fp32": math.inf, "fp16": math.inf}
    count = 0
    quiet = settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )

    def record(precision: str, case) -> None:
        worst[precision] = min(worst[precision], _compared_psnr(pair, case, precision))

    @quiet
    @given(case=pair.cases())
    def fp32(case):
        nonlocal count
        count += 1
        record("fp32", case)

    @quiet
    @given(case=pair.cases(scales=thresholds.LAYER_FP16_INPUT_SCALES))
    def fp16(case):
        record("fp16", case)

    start = time.perf_counter()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation notes on mask dtypes are not findings
        fp32()
        fp16()
    return Row(pair, count, worst["fp32"], worst["fp16"], time.perf_counter() - start)


def render(rows: list[Row]) -> str:
    header = ("layer pair", "ANE layer", "baseline", "cases", "fp32 min PSNR", "fp16 min PSNR", "verdict")
    lines = [
        [
            r.pair.name,
            r.pair.ane_layer,
            r.pair.baseline,
            str(r.cases),
            f"{r.fp32_min_psnr_db:.1f} dB",
            f"{r.fp16_min_psnr_db:.1f} dB",
            "pass" if r.passed else "FAIL",
        ]
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*line) for line in lines]
    out.append(
        f"thresholds: fp32 >= {thresholds.LAYER_FP32_PSNR_DB} dB; fp16 >= {thresholds.LAYER_FP16_PSNR_DB} dB "
        f"(inputs of magnitude {', '.join(map(str, thresholds.LAYER_FP16_INPUT_SCALES))}); "
        "PSNR = 20 log10((max|ref| + 1e-5) / (RMSE + 1e-10))"
    )
    return "\n".join(out)


def layer_table(examples: int = 20, names: list[str] | None = None) -> list[Row]:
    unknown = sorted(set(names or []) - set(REGISTRY))
    if unknown:
        raise ValueError(f"unknown layer pairs {unknown}; registered: {sorted(REGISTRY)}")
    return [measure(REGISTRY[name], examples) for name in (names or sorted(REGISTRY))]
