"""Running a layer pair on one case, in fp32 or fp16, and asserting parity against the fp32 baseline."""

from __future__ import annotations

import torch

from .. import thresholds
from ..metrics import Parity, assert_parity
from .pairs import Case, LayerPair

MIN_PSNR_DB = {"fp32": thresholds.LAYER_FP32_PSNR_DB, "fp16": thresholds.LAYER_FP16_PSNR_DB}


def _to_half(inputs: dict) -> dict:
    return {
        k: v.half() if isinstance(v, torch.Tensor) and v.is_floating_point() else v for k, v in inputs.items()
    }


def run_pair(pair: LayerPair, case: Case, precision: str = "fp32") -> tuple[torch.Tensor, torch.Tensor]:
    """The fp32 baseline output and the ANE output (in ``precision``, returned as fp32), both (B, S, C)."""
    baseline = pair.make_baseline(case)
    ane = pair.transfer(baseline, case).eval()
    inputs = pair.inputs(case)
    with torch.no_grad():
        reference = pair.run_baseline(baseline, inputs)
        if precision == "fp16":
            ane, inputs = ane.half(), _to_half(inputs)
        output = pair.run_ane(ane, inputs).float()
    return reference, output


def check_pair(
    pair: LayerPair, case: Case, precision: str = "fp32", min_psnr_db: float | None = None
) -> Parity | None:
    """Assert parity of the pair on ``case``; positions with no unmasked key must be finite instead."""
    if precision not in MIN_PSNR_DB:
        raise ValueError(f"precision: expected one of {sorted(MIN_PSNR_DB)}, got {precision!r}")
    threshold = MIN_PSNR_DB[precision] if min_psnr_db is None else min_psnr_db
    reference, output = run_pair(pair, case, precision)
    name = f"{pair.name} ({pair.ane_layer} vs {pair.baseline}) [{precision}]"
    if reference.shape != output.shape:
        raise AssertionError(
            f"{name}: output shape {tuple(output.shape)} != baseline {tuple(reference.shape)}"
            f"\n  {case.describe()}"
        )
    positions = pair.compared_positions(case)
    if positions is not None:
        masked_out = output[~positions]
        if not bool(torch.isfinite(masked_out).all()):
            raise AssertionError(
                f"{name}: non-finite output at fully masked positions (seed {case.seed})\n  {case.describe()}"
            )
        if not bool(positions.any()):
            return None  # every position fully masked: finiteness is all there is to check
        reference, output = reference[positions], output[positions]
    return assert_parity(
        reference, output, min_psnr_db=threshold, name=name, seed=case.seed, context=case.describe()
    )
