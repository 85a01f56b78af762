"""Layer normalization over the channel axis of (B, C, 1, S) tensors."""

from __future__ import annotations

import torch
from torch import nn

from .checks import check_bc1s


class LayerNormANE(nn.Module):
    """``nn.LayerNorm`` over channels for (B, C, 1, S) inputs.

    The affine step is torch's: ``x_hat * weight + bias``, so stock checkpoints load unchanged (no
    bias / weight division, which breaks at weight == 0). The op sequence is the one coremltools'
    ``fuse_layernorm_or_instancenorm`` pass recognizes for axis 1; our conversion pipeline then folds
    the trailing mul/add into the fused ``layer_norm`` (see ``verification.coreml``).

    ``clip`` (off by default) clamps inputs to [-clip, clip] out of place before normalizing: in fp16
    the squared deviation overflows once |x - mean| exceeds 256.
    """

    def __init__(
        self, num_channels: int, eps: float = 1e-5, elementwise_affine: bool = True, clip: float | None = None
    ):
        super().__init__()
        if clip is not None and not clip > 0:
            raise ValueError(f"clip: expected a positive magnitude or None, got {clip}")
        self.num_channels = num_channels
        self.eps = eps
        self.clip = clip
        if elementwise_affine:
            self.weight = nn.Parameter(torch.ones(num_channels))
            self.bias = nn.Parameter(torch.zeros(num_channels))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_bc1s(
            x,
            f"LayerNormANE({self.num_channels}) input",
            channels=self.num_channels,
            dtype=None if self.weight is None else self.weight.dtype,
        )
        if self.clip is not None:
            x = x.clamp(-self.clip, self.clip)  # a new tensor: the caller's input stays untouched
        # ANE principle 1 (data format): normalize over channels, axis 1; the sequence stays last and packed.
        mean = x.mean(dim=1, keepdim=True)
        zero_mean = x - mean
        variance = (zero_mean * zero_mean).mean(dim=1, keepdim=True)
        out = zero_mean * (variance + self.eps).rsqrt()
        if self.weight is not None:
            out = out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return out

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}, affine={self.weight is not None}, clip={self.clip}"

    @classmethod
    def from_layer_norm(cls, norm: nn.LayerNorm, *, eps: float | None = None) -> LayerNormANE:
        """Port an ``nn.LayerNorm`` over the last axis (``eps`` overrides the checkpoint's)."""
        if len(norm.normalized_shape) != 1:
            raise ValueError(
                f"from_layer_norm: expected a LayerNorm over one axis, got normalized_shape "
                f"{tuple(norm.normalized_shape)}"
            )
        affine = norm.weight is not None
        layer = cls(norm.normalized_shape[0], eps=norm.eps if eps is None else eps, elementwise_affine=affine)
        if affine:
            layer.to(dtype=norm.weight.dtype, device=norm.weight.device)
            layer.load_state_dict({"weight": norm.weight.detach(), "bias": _bias_or_zeros(norm)})
        return layer

    def to_layer_norm(self) -> nn.LayerNorm:
        norm = nn.LayerNorm(self.num_channels, eps=self.eps, elementwise_affine=self.weight is not None)
        if self.weight is not None:
            norm.to(dtype=self.weight.dtype, device=self.weight.device)
            norm.load_state_dict({"weight": self.weight.detach(), "bias": self.bias.detach()})
        return norm


def _bias_or_zeros(norm: nn.LayerNorm) -> torch.Tensor:
    if norm.bias is None:  # LayerNorm(bias=False), torch >= 2.1
        return torch.zeros_like(norm.weight)
    return norm.bias.detach()
