"""Two tensor layouts of the same ANE models, one per converter: ``set_layout(model, "coreml" | "coreai")``.

Both compute the same math in the model's dtype; they differ only in the shape of a few tensors.

- ``coreml`` (the default): the padding bias is (B, S_k, 1, 1) and is broadcast over the queries inside
  each score add; first-token heads (classifiers, the pooler) run on (B, C, 1, 1). No broadcast or
  transpose of the mask: what the Core ML readiness limits on copies count.
- ``coreai``: Core AI's Neural Engine rules forbid any tensor whose last axis is 1 (the last axis of a
  Neural Engine buffer is padded to 64 bytes: 32x the memory in fp16). The padding bias is the full
  (B, S_k, 1, S_q) mask of Core AI's (1, key, 1, query) form, built once for all layers; first-token
  heads run on the first ``ALIGNED_TOKENS`` tokens (one 64-byte row of fp16, the memory one token takes
  anyway) and token 0 is picked at the very end; embedding lookups are row gathers.

Why, and the measured effect on both targets: docs/coreai-mask.md.
"""

from __future__ import annotations

import torch
from torch import nn

from ane_layers import EmbeddingsANE

LAYOUTS = ("coreml", "coreai")
DEFAULT_LAYOUT = "coreml"
ALIGNED_TOKENS = 32  # fp16 values in one 64-byte row


class LayoutAware:
    """Mixin of the modules whose tensors differ between the layouts (``ane_layout`` says which)."""

    ane_layout: str = DEFAULT_LAYOUT


def set_layout(model: nn.Module, layout: str) -> nn.Module:
    """Switch every layout-aware module of ``model`` to ``layout`` ("coreml" or "coreai"); returns ``model``.

    Call it before tracing or exporting; outputs do not change. Raises ``ValueError`` for another layout
    and ``TypeError`` for a model without layout-aware modules (the decoders have a single layout).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout: expected one of {list(LAYOUTS)}, got {layout!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"set_layout: expected an ane_models model (an nn.Module), got {type(model).__name__}"
        )
    aware = [m for m in model.modules() if isinstance(m, LayoutAware)]
    if not aware:
        raise TypeError(
            f"set_layout: {type(model).__name__} has no layout switch; expected a model from "
            "ane_models.optimize (an encoder) or ane_models.reference"
        )
    for module in aware:
        module.ane_layout = layout
    for module in model.modules():
        if isinstance(module, EmbeddingsANE):
            module.row_gather = layout == "coreai"
    return model


def layout_of(model: nn.Module) -> str:
    """The layout of ``model``'s layout-aware modules (``DEFAULT_LAYOUT`` when it has none)."""
    layouts = {m.ane_layout for m in model.modules() if isinstance(m, LayoutAware)}
    if len(layouts) > 1:
        raise ValueError(f"{type(model).__name__}: modules in different layouts {sorted(layouts)}")
    return layouts.pop() if layouts else DEFAULT_LAYOUT


def first_tokens(x: torch.Tensor, layout: str) -> torch.Tensor:
    """(B, C, 1, S) -> what a first-token head runs on: (B, C, 1, 1), or the first aligned row (coreai)."""
    return x[:, :, :, :ALIGNED_TOKENS] if layout == "coreai" else x[:, :, :, :1]


def first_of(y: torch.Tensor, layout: str) -> torch.Tensor:
    """(B, L, 1, n) -> (B, L): token 0. In the coreai layout by a strided slice of the flattened scores, since
    a converter lowers indexing the last axis to a slice of length 1 (a last axis of 1) then a reshape."""
    if layout == "coreai":
        return y.flatten(1)[:, :: y.shape[-1]]
    return y[:, :, 0, 0]


def choice_logits(logits: torch.Tensor, input_ids: torch.Tensor, layout: str) -> torch.Tensor:
    """(B * num_choices, 1, 1, n) scores of token 0.. -> (B, num_choices), by shape alone (no traced size
    arithmetic, aten::Int, for coremltools to convert; the coreai layout is exported with static shapes)."""
    if layout == "coreai":
        return logits.flatten()[:: logits.shape[-1]].reshape(input_ids.shape[0], input_ids.shape[1])
    return logits.flatten().reshape_as(input_ids[:, :, 0])
