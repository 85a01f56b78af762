"""RMS normalization over the channel axis of (B, C, 1, S) tensors (Llama, Qwen; Gemma's offset form)."""

from __future__ import annotations

import torch
from torch import nn

from .checks import check_bc1s


class RMSNormANE(nn.Module):
    """``weight * x / sqrt(mean(x**2) + eps)`` over channels (axis 1) of a (B, C, 1, S) tensor.

    ``weight_offset`` is added to the stored weight: 0 for the Llama form (transformers' ``LlamaRMSNorm``),
    1 for the Gemma form, whose checkpoints store the scale as an offset from 1.

    The statistics are computed in the input's dtype (no upcast): an fp16 program squares in fp16, so
    |x| beyond 256 overflows the square. ``verification`` measures the residual stream's peak per layer
    to say when a model gets there.
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
        mean_square = (x * x).mean(dim=1, keepdim=True)
        scale = self.weight if self.weight_offset == 0 else self.weight + self.weight_offset
        return x * (mean_square + self.eps).rsqrt() * scale.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}, weight_offset={self.weight_offset}"
