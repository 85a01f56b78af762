"""Seeded weights for the foreign producers' tiny checkpoints, drawn well away from transformers' defaults.

Fresh transformers weights hide defects: LayerNorms at weight 1 / bias 0, zero biases, and attention
that is nearly uniform at init scale (std 0.02), so that swapping two layers' query weights moves the
output by less than fp16 noise. Here every parameter is redrawn: norm weights in [0.6, 1.4] (positive,
since Apple's ane_transformers divides norm biases by norm weights when it loads a checkpoint), norm
and linear biases nonzero, matrices at 1/sqrt(fan_in), and query/key matrices scaled up so that each
query attends to a few keys. Torch only (no transformers import): the ane_transformers script in its own
environment uses it too.
"""

from __future__ import annotations

import torch

QUERY_KEY_SCALE = 3.0
NORM_NAMES = ("LayerNorm", "layer_norm")
QUERY_KEY_NAMES = ("query", "key", "q_lin", "k_lin")


def _nonzero(values: torch.Tensor, floor: float) -> torch.Tensor:
    """``values`` moved at least ``floor`` away from zero, keeping their signs."""
    return torch.where(values >= 0, values + floor, values - floor)


def _redrawn(name: str, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    leaf = name.rsplit(".", 2)
    module, kind = leaf[-2] if len(leaf) > 1 else "", leaf[-1]
    normal = torch.randn(shape, generator=generator)
    if any(n in module for n in NORM_NAMES):
        if kind == "weight":
            return 0.6 + 0.8 * torch.rand(shape, generator=generator)
        return _nonzero(0.2 * normal, 0.02)
    if kind == "bias":
        return _nonzero(0.1 * normal, 0.01)
    if len(shape) == 2 and "embeddings" in name:
        return normal
    fan_in = shape[1] if len(shape) > 1 else shape[0]
    scale = QUERY_KEY_SCALE if module in QUERY_KEY_NAMES else 1.0
    return normal * scale / fan_in**0.5


def draw_weights(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every parameter of ``model`` redrawn in place from ``seed`` (see the module docstring); returns it."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.copy_(_redrawn(name, parameter.shape, generator))
    return model


def sample_ids(batch: int, seq_len: int, vocab: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded ``(input_ids, attention_mask)`` (int64); from the second row on, the last quarter is padding
    (id 0, mask 0), so that a mask defect shows."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (batch, seq_len), generator=generator)
    mask = torch.ones(batch, seq_len, dtype=torch.long)
    if batch > 1:
        mask[1:, seq_len - seq_len // 4 :] = 0
        ids[mask == 0] = 0
    return ids, mask
