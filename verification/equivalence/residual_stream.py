"""fp16 feasibility of a decoder: the peak magnitude of its residual stream, layer by layer.

A decoder adds every layer's output to one running sum, the residual stream, and some models let it
grow far beyond what their norms see (Gemma-like models peak above fp16's 65504). In fp16 such a
stream turns into Inf, and an fp16 PSNR computed from it is garbage. ``fp16_residual_check`` measures
the peaks in fp32 first; when one exceeds fp16's range it names the first layer that does and reports
no PSNR, instead of a meaningless figure. Otherwise it runs the model in fp16 and reports the PSNR.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..metrics import psnr

FP16_MAX = 65504.0


@dataclass(frozen=True)
class ResidualStreamCheck:
    """Peaks of |residual stream| after the embeddings and after each layer (fp32), and the fp16 verdict.

    ``overflow_layer`` names the first place whose peak exceeds ``FP16_MAX`` (None if none does);
    ``fp16_psnr_db`` is the fp16 model's PSNR against the fp32 reference, None when it overflows.
    """

    peaks: tuple[tuple[str, float], ...]
    overflow_layer: str | None
    fp16_psnr_db: float | None

    @property
    def peak(self) -> tuple[str, float]:
        return max(self.peaks, key=lambda item: item[1])

    def describe(self) -> str:
        where, value = self.peak
        if self.overflow_layer is not None:
            first = dict(self.peaks)[self.overflow_layer]
            return (
                f"residual stream exceeds fp16's range ({FP16_MAX:g}) at {self.overflow_layer} "
                f"(peak {first:.4g}; largest {value:.4g} at {where}): fp16 is not feasible as is, "
                f"no fp16 PSNR reported"
            )
        return (f"residual stream peak {value:.4g} at {where} (fp16 max {FP16_MAX:g}); "
                f"fp16 PSNR {self.fp16_psnr_db:.1f} dB")


def residual_peaks(stack: nn.Module, run: Callable[[], object]) -> tuple[tuple[str, float], ...]:
    """Peaks of |x| where ``stack`` (a decoder with ``embed_tokens`` and ``layers``) hands the residual
    stream on: after the embeddings and after every layer, recorded by forward hooks during ``run()``."""
    peaks: dict[str, float] = {}

    def recorder(name: str):
        def hook(module, inputs, output):
            value = output[0] if isinstance(output, tuple) else output
            peaks[name] = max(peaks.get(name, 0.0), float(value.detach().abs().max()))

        return hook

    handles = [stack.embed_tokens.register_forward_hook(recorder("embeddings"))]
    handles += [layer.register_forward_hook(recorder(f"layer {i}")) for i, layer in enumerate(stack.layers)]
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()
    return tuple(peaks.items())


def fp16_residual_check(
    ane_model: nn.Module, input_ids: torch.Tensor, reference_logits: torch.Tensor, position: int = 0
) -> ResidualStreamCheck:
    """Measure the residual stream of an ``ane_models`` causal LM (fp32) on ``input_ids``, then, if it
    fits fp16, the fp16 model's logits PSNR against ``reference_logits`` (the baseline's, fp32)."""
    stack = ane_model.model
    ane_model.reset_cache()
    peaks = residual_peaks(stack, lambda: ane_model(input_ids, position))
    overflow = next((name for name, value in peaks if value > FP16_MAX), None)
    if overflow is not None:
        return ResidualStreamCheck(peaks=peaks, overflow_layer=overflow, fp16_psnr_db=None)
    half = copy.deepcopy(ane_model).half()
    half.reset_cache()
    with torch.no_grad():
        logits = half(input_ids, position)[0].float()
    return ResidualStreamCheck(peaks=peaks, overflow_layer=None, fp16_psnr_db=psnr(reference_logits, logits))
