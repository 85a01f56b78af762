"""RMS normalization over the channel axis of (B, C, 1, S) tensors (Llama, Qwen; Gemma's offset form)."""

from __future__ import annotations

import torch
from torch import nn

from .checks import check_bc1s

FP16_SMALLEST_NORMAL = 2.0**-14


class RMSNormANE(nn.Module):
    """``weight * x / sqrt(mean(x**2) + eps)`` over channels (axis 1) of a (B, C, 1, S) tensor.

    ``weight_offset`` is added to the stored weight: 0 for the Llama form (transformers' ``LlamaRMSNorm``),
    1 for the Gemma form, whose checkpoints store the scale as an offset from 1.

    fp16 range: transformers upcasts to fp32 here, which an fp16 program cannot do, and the square of
    any |x| above 256 overflows fp16 (SmolLM2's residual stream peaks near 2.5e4). So each position is
    first divided by its largest magnitude over the channels: ``x / rms(x) = y / rms(y)`` with
    ``y = x / max|x|`` in [-1, 1], whose mean square lies in [1/C, 1], and eps becomes
    ``(sqrt(eps) / max|x|)**2`` (computed in that order so that it neither overflows nor underflows
    where it matters). Same math as the plain form, six more elementwise ops and one reduction.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6, weight_offset: float = 0.0):
        super().__init__()
        if not eps > 0:
            raise ValueError(f"RMSNormANE: expected a positive eps, got {eps}")
        self.num_channels = num_channels
        self.eps = eps
        self.weight_offset = weight_offset
        self.weight = nn.Parameter(torch.full((num_channels,), 1.0 - weight_offset))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_bc1s(
            x, f"RMSNormANE({self.num_channels}) input", channels=self.num_channels, dtype=self.weight.dtype
        )
        return self.normalize(x)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """The normalization without input checks (attention calls it per head on views of q and k)."""
        # ANE principle 1 (data format): reduce over channels, axis 1; the sequence stays last and packed.
        peak = x.abs().amax(dim=1, keepdim=True).clamp_min(FP16_SMALLEST_NORMAL)  # an all-zero row stays 0
        y = x / peak
        mean_square = (y * y).mean(dim=1, keepdim=True)
        eps = (self.eps**0.5 / peak) ** 2
        scale = self.weight if self.weight_offset == 0 else self.weight + self.weight_offset
        return y * (mean_square + eps).rsqrt() * scale.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}, weight_offset={self.weight_offset}"
