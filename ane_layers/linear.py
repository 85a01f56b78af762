"""Linear layers as 1x1 convolutions over (B, C, 1, S)."""

from __future__ import annotations

import torch
from torch import nn

from .checks import check_bc1s


class LinearANE(nn.Conv2d):
    """``nn.Linear`` computed as a 1x1 ``nn.Conv2d`` on (B, C, 1, S) tensors.

    Loads ``nn.Linear`` checkpoints directly: a 2D weight (out, in) found under this module's key is
    unsqueezed to (out, in, 1, 1). The mapping lives in this module's own ``_load_from_state_dict``,
    which torch calls with this module's prefix wherever the module sits, so it works at any depth
    (the published reference used a root-level hook, which torch 2.x hands only the root's own keys).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        # ANE principle 1: a 1x1 conv over channels-first (B, C, 1, S) replaces nn.Linear.
        super().__init__(in_features, out_features, kernel_size=1, bias=bias)
        self.in_features = in_features
        self.out_features = out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_bc1s(
            x,
            f"{type(self).__name__}({self.in_features}->{self.out_features}) input",
            channels=self.in_features,
            dtype=self.weight.dtype,
        )
        return super().forward(x)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "weight"
        weight = state_dict.get(key)
        if weight is not None and weight.dim() == 2:
            state_dict[key] = weight[:, :, None, None]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> LinearANE:
        """A LinearANE with the weights of ``linear``."""
        layer = cls(linear.in_features, linear.out_features, bias=linear.bias is not None)
        layer.to(dtype=linear.weight.dtype, device=linear.weight.device)
        layer.load_state_dict(linear.state_dict())
        return layer

    def to_linear(self) -> nn.Linear:
        """The equivalent ``nn.Linear`` (weights copied)."""
        linear = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None)
        linear.to(dtype=self.weight.dtype, device=self.weight.device)
        with torch.no_grad():
            linear.weight.copy_(self.weight[:, :, 0, 0])
            if self.bias is not None:
                linear.bias.copy_(self.bias)
        return linear
