"""transformers' LlamaRotaryEmbedding + apply_rotary_pos_emb beside RotaryEmbeddingANE (rotate-half, per
head along channels), at any rotary position up to the model's maximum, with rope scalings."""

from __future__ import annotations

import torch
from torch import nn

from ane_layers import decoder_porting, from_bc1s, to_bc1s
from ane_layers.rotary import apply_rotary

from .. import strategies as s
from .decoder_cases import decoder_cases, hf_config, positions
from .registry import Case, LayerPair, hidden_states, register


def _rotary_cases(scales=s.INPUT_SCALES):
    return decoder_cases(scales=scales, cache=False)


def _llama_rotary(c: Case) -> nn.Module:
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    return LlamaRotaryEmbedding(hf_config(c))


def _run_hf_rotary(m: nn.Module, i: dict) -> torch.Tensor:
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    x, d = i["x"], i["head_dim"]
    heads = x.view(x.shape[0], x.shape[1], -1, d).transpose(1, 2)  # (B, H, S, d), as LlamaAttention
    cos, sin = m(x, i["positions"])
    rotated, _ = apply_rotary_pos_emb(heads, heads, cos, sin)
    return rotated.transpose(1, 2).flatten(2)


def _run_ane_rotary(m: nn.Module, i: dict) -> torch.Tensor:
    x = to_bc1s(i["x"])
    cos, sin = m(i["positions"], x.dtype)
    return from_bc1s(torch.cat([apply_rotary(h, cos, sin) for h in x.split(i["head_dim"], dim=1)], dim=1))


register(
    LayerPair(
        name="rotary",
        ane_layer="RotaryEmbeddingANE",
        baseline="transformers LlamaRotaryEmbedding + apply_rotary_pos_emb",
        cases=_rotary_cases,
        make_baseline=_llama_rotary,
        transfer=lambda base, c: decoder_porting.from_llama_rotary(base),
        inputs=lambda c: {
            "x": hidden_states(c),
            "positions": positions(c, 0, c.dims.seq),
            "head_dim": c.dims.head_dim,
        },
        run_baseline=_run_hf_rotary,
        run_ane=_run_ane_rotary,
    )
)
