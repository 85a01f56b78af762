"""Position-wise feed-forward block on (B, C, 1, S) tensors."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .checks import check_bc1s
from .linear import LinearANE

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,  # exact (erf) GELU
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
}


def make_activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {name!r}") from None


class FeedForwardANE(nn.Module):
    """``fc2(activation(fc1(x)))`` with 1x1 convolutions in place of linear layers."""

    def __init__(self, embed_dim: int, hidden_dim: int, activation: str = "relu", bias: bool = True):
        super().__init__()
        self.embed_dim = embed_dim
        self.activation_name = activation
        self.fc1 = LinearANE(embed_dim, hidden_dim, bias=bias)
        self.activation = make_activation(activation)
        self.fc2 = LinearANE(hidden_dim, embed_dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_bc1s(x, "FeedForwardANE input", channels=self.embed_dim, dtype=self.fc1.weight.dtype)
        # ANE principle 1 (data format): both projections are 1x1 convs over (B, C, 1, S); the
        # activation is elementwise, so the hidden activation never leaves the layout.
        return self.fc2(self.activation(self.fc1(x)))
