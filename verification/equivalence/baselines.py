"""Building and running the torch baselines the pairs compare against, from torch alone.

Nothing here may come from ``ane_layers``: a baseline built with the project's own helpers would change
together with the layer it checks, and no pair could see the defect.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


def torch_activation(name: str) -> nn.Module:
    """The torch module for an activation name drawn by ``strategies.activations``."""
    if name == "relu":
        return nn.ReLU()
    if name == "gelu":
        return nn.GELU()
    if name == "gelu_tanh":
        return nn.GELU(approximate="tanh")
    raise ValueError(f"unknown activation {name!r}: expected 'relu', 'gelu' or 'gelu_tanh'")


@contextmanager
def without_fast_path() -> Iterator[None]:
    """torch.nn's fused Transformer fast path switched off (``torch.backends.mha``), restored after."""
    previous = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(previous)
