"""transformers' Llama-family modules (eager attention) beside the decoder layers: LlamaAttention with and
without grouped kv heads, Qwen3Attention (q/k norms), LlamaMLP, LlamaDecoderLayer, and the LM head.

Attention pairs run over a KV cache: ``past`` tokens go in first (transformers with its DynamicCache,
the ANE layer with a ``KVCache`` of ``past + new + spare`` slots), then the ``new`` tokens are compared.
Rotary positions start anywhere up to the model's maximum, per row.
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st
from torch import nn

from ane_layers import MASK_SENTINEL, decoder_porting, from_bc1s, to_bc1s
from ane_layers.kv_cache import KVCache
from ane_layers.rotary import RotaryEmbeddingANE

from .. import strategies as s
from .decoder_cases import decoder_cases, hf_config, positions
from .registry import (
    ATTENTION_SCALES,
    Case,
    LayerPair,
    hidden_states,
    randomize_parameters,
    register,
    run_bc1s,
)


def _hf_cache(config):
    from transformers import DynamicCache

    try:
        return DynamicCache(config=config)
    except TypeError:  # transformers 4.x
        return DynamicCache()


def _hf_causal_mask(batch: int, past: int, new: int) -> torch.Tensor:
    """(B, 1, new, past + new) additive mask as transformers builds it (finfo.min above the diagonal)."""
    keys = torch.arange(past + new)[None, :]
    queries = past + torch.arange(new)[:, None]
    return ((keys > queries).float() * torch.finfo(torch.float32).min)[None, None].expand(
        batch, 1, new, past + new
    )


class CachedRun(nn.Module):
    """The ANE side of a cached pair: the layer, its rotary table and a fresh ``KVCache`` per call."""

    def __init__(self, layer: nn.Module, rotary: RotaryEmbeddingANE, attention: nn.Module):
        super().__init__()
        self.layer, self.rotary, self.attention = layer, rotary, attention
        self.ane_layer_name = type(layer).__name__

    def forward(self, prefix: torch.Tensor | None, x: torch.Tensor, c: Case) -> torch.Tensor:
        o, batch = c.options, c.dims.batch
        past, capacity = o["past"], o["past"] + c.dims.seq + o["spare"]
        cache = KVCache(
            1, batch, self.attention.num_kv_heads, self.attention.head_dim, capacity, dtype=x.dtype
        )
        slots = torch.arange(capacity)[None, :, None, None]
        for first, tokens in ((0, prefix), (past, x)):
            if tokens is None:
                continue
            n = tokens.shape[1]
            queries = (first + torch.arange(n))[None, None, None, :]
            bias = (slots > queries).to(x.dtype) * MASK_SENTINEL  # causal over cache slots, finite
            cos, sin = self.rotary(positions(c, first, n), x.dtype)
            out = self.layer(to_bc1s(tokens), cos, sin, bias, cache, 0, first)
        return from_bc1s(out)


def _cached_inputs(c: Case) -> dict:
    past = c.options["past"]
    prefix = hidden_states(c, seq=past, seed_offset=1) if past else None
    return {"prefix": prefix, "x": hidden_states(c), "case": c}


def _run_hf_cached(m: nn.Module, i: dict, *, layer: bool) -> torch.Tensor:
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    c = i["case"]
    config, past, batch = m.config_for_pair, c.options["past"], c.dims.batch
    rotary, cache = LlamaRotaryEmbedding(config), _hf_cache(config)
    out = None
    for first, tokens in ((0, i["prefix"]), (past, i["x"])):
        if tokens is None:
            continue
        n = tokens.shape[1]
        pos = positions(c, first, n)
        embeddings = rotary(tokens, pos)
        mask = _hf_causal_mask(batch, first, n)
        if layer:
            out = m(
                tokens,
                attention_mask=mask,
                position_ids=pos,
                past_key_values=cache,
                use_cache=True,
                position_embeddings=embeddings,
            )
        else:
            out = m(tokens, position_embeddings=embeddings, attention_mask=mask, past_key_values=cache)
        out = out[0] if isinstance(out, tuple) else out
    return out


def _with_config(module: nn.Module, config) -> nn.Module:
    module.config_for_pair = config  # the decoder layer keeps no config of its own
    return module


def _attention_baseline(family: str):
    def make(c: Case) -> nn.Module:
        from transformers.models.llama.modeling_llama import LlamaAttention
        from transformers.models.qwen3.modeling_qwen3 import Qwen3Attention

        config = hf_config(c, family)
        cls = {"llama": LlamaAttention, "qwen3": Qwen3Attention}[family]
        return _with_config(randomize_parameters(cls(config, layer_idx=0), c.seed), config)

    return make


def _cached_transfer(port):
    def transfer(base, c: Case) -> nn.Module:
        from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

        layer = port(base)
        attention = getattr(layer, "self_attn", layer)
        return CachedRun(
            layer, decoder_porting.from_llama_rotary(LlamaRotaryEmbedding(base.config_for_pair)), attention
        )

    return transfer


def _attention_cases(scales=ATTENTION_SCALES):
    return decoder_cases(scales=scales)


for _family, _name, _hf in (
    ("llama", "llama_attention", "LlamaAttention"),
    ("qwen3", "qwen3_attention", "Qwen3Attention"),
):
    register(
        LayerPair(
            name=_name,
            ane_layer="GroupedQueryAttentionANE" + ("(qk_norm=True)" if _family == "qwen3" else ""),
            baseline=f"transformers {_hf} (eager, DynamicCache)",
            cases=_attention_cases,
            make_baseline=_attention_baseline(_family),
            transfer=_cached_transfer(decoder_porting.from_llama_attention),
            inputs=_cached_inputs,
            run_baseline=lambda m, i: _run_hf_cached(m, i, layer=False),
            run_ane=lambda m, i: m(i["prefix"], i["x"], i["case"]),
        )
    )


def _decoder_layer_baseline(c: Case) -> nn.Module:
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer

    config = hf_config(c, "llama")
    return _with_config(randomize_parameters(LlamaDecoderLayer(config, layer_idx=0), c.seed), config)


register(
    LayerPair(
        name="llama_decoder_layer",
        ane_layer="CausalDecoderLayerANE",
        baseline="transformers LlamaDecoderLayer (eager, DynamicCache)",
        cases=_attention_cases,
        make_baseline=_decoder_layer_baseline,
        transfer=_cached_transfer(decoder_porting.from_llama_decoder_layer),
        inputs=_cached_inputs,
        run_baseline=lambda m, i: _run_hf_cached(m, i, layer=True),
        run_ane=lambda m, i: m(i["prefix"], i["x"], i["case"]),
    )
)


def _mlp_baseline(c: Case) -> nn.Module:
    from transformers.models.llama.modeling_llama import LlamaMLP

    return randomize_parameters(LlamaMLP(hf_config(c, "llama")), c.seed)


register(
    LayerPair(
        name="llama_mlp",
        ane_layer="SwiGLUFeedForwardANE",
        baseline="transformers LlamaMLP (SiLU gate, optional mlp_bias)",
        cases=lambda scales=s.INPUT_SCALES: decoder_cases(scales=scales, cache=False),
        make_baseline=_mlp_baseline,
        transfer=lambda base, c: decoder_porting.from_llama_mlp(base),
        inputs=lambda c: {"x": hidden_states(c)},
        run_baseline=lambda m, i: m(i["x"]),
        run_ane=lambda m, i: run_bc1s(m, i["x"]),
    )
)


def _lm_head_cases(scales=s.INPUT_SCALES):
    return decoder_cases(scales=scales, cache=False).flatmap(
        lambda c: st.tuples(st.integers(2, 700), st.integers(1, 256)).map(
            lambda vc: Case(
                dims=c.dims,
                seed=c.seed,
                scale=c.scale,
                options={**c.options, "vocab": vc[0], "channels_per_conv": vc[1]},
            )
        )
    )


register(
    LayerPair(
        name="lm_head",
        ane_layer="LMHeadANE",
        baseline="torch.nn.Linear(bias=False), split along the vocabulary",
        cases=_lm_head_cases,
        make_baseline=lambda c: randomize_parameters(
            nn.Linear(c.dims.embed, c.options["vocab"], bias=False), c.seed
        ),
        transfer=lambda base, c: decoder_porting.from_lm_head(base, c.options["channels_per_conv"]),
        inputs=lambda c: {"x": hidden_states(c)},
        run_baseline=lambda m, i: m(i["x"]),
        run_ane=lambda m, i: run_bc1s(m, i["x"]),
    )
)
