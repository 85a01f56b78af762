"""torch.nn's encoder and decoder layers beside the ANE encoder and decoder layers."""

from __future__ import annotations

from contextlib import nullcontext

import torch
from hypothesis import strategies as st
from torch import nn

from ane_layers import from_bc1s, porting, to_bc1s

from .. import strategies as s
from ..baselines import torch_activation, without_fast_path
from .registry import (
    ATTENTION_SCALES,
    Case,
    LayerPair,
    both_masks,
    drawn_cases,
    hidden_states,
    memory_rows,
    query_rows_with_keys,
    randomize_parameters,
    register,
    run_bc1s,
)


def _encoder_cases(scales=ATTENTION_SCALES):
    return drawn_cases(
        scales=scales,
        options={
            "norm_first": st.booleans(),
            "activation": s.activations(),
            "causal": st.booleans(),
            "eps": s.layer_norm_eps(),
        },
    )


def _torch_encoder_layer(c: Case) -> nn.Module:
    layer = nn.TransformerEncoderLayer(
        c.dims.embed,
        c.dims.heads,
        c.dims.ffn,
        dropout=0.0,
        activation=torch_activation(c.options["activation"]),
        layer_norm_eps=c.options["eps"],
        batch_first=True,
        norm_first=c.options["norm_first"],
    )
    return randomize_parameters(layer, c.seed)


def _run_torch_encoder_layer(m: nn.Module, i: dict) -> torch.Tensor:
    x, causal = i["x"], i["causal"]
    mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1]) if causal else None
    padding = None if i["keep"] is None else ~i["keep"]
    # torch (2.7 to 2.13 at least) flags any nn.GELU as "gelu" for the encoder layer's fused fast path,
    # which then computes exact GELU for a GELU(approximate="tanh") module (88 dB off its own slow
    # path): the baseline is the module's documented math, so tanh GELU runs without the fast path.
    tanh_gelu = isinstance(m.activation, nn.GELU) and m.activation.approximate == "tanh"
    with without_fast_path() if tanh_gelu else nullcontext():
        return m(x, src_mask=mask, src_key_padding_mask=padding, is_causal=causal)


register(
    LayerPair(
        name="encoder_layer",
        ane_layer="TransformerEncoderLayerANE",
        baseline="torch.nn.TransformerEncoderLayer",
        cases=_encoder_cases,
        make_baseline=_torch_encoder_layer,
        transfer=lambda base, c: porting.from_encoder_layer(base),
        inputs=lambda c: {"x": hidden_states(c), "keep": c.keep, "causal": c.options["causal"]},
        run_baseline=_run_torch_encoder_layer,
        run_ane=lambda m, i: run_bc1s(m, i["x"], attention_mask=i["keep"], causal=i["causal"]),
        compared_positions=lambda c: query_rows_with_keys(c.keep, c.dims.seq, c.options["causal"]),
    )
)


def _decoder_cases(scales=ATTENTION_SCALES):
    return drawn_cases(
        scales=scales,
        memory=True,
        options={
            "norm_first": st.booleans(),
            "activation": s.activations(),
            "causal": st.booleans(),
            "eps": s.layer_norm_eps(),
        },
    )


def _torch_decoder_layer(c: Case) -> nn.Module:
    layer = nn.TransformerDecoderLayer(
        c.dims.embed,
        c.dims.heads,
        c.dims.ffn,
        dropout=0.0,
        activation=torch_activation(c.options["activation"]),
        layer_norm_eps=c.options["eps"],
        batch_first=True,
        norm_first=c.options["norm_first"],
    )
    return randomize_parameters(layer, c.seed)


def _run_torch_decoder_layer(m: nn.Module, i: dict) -> torch.Tensor:
    x, causal = i["x"], i["causal"]
    return m(
        x,
        i["memory"],
        tgt_mask=nn.Transformer.generate_square_subsequent_mask(x.shape[1]) if causal else None,
        tgt_is_causal=causal,
        tgt_key_padding_mask=None if i["keep"] is None else ~i["keep"],
        memory_key_padding_mask=None if i["memory_keep"] is None else ~i["memory_keep"],
    )


def _decoder_inputs(c: Case) -> dict:
    memory = s.seeded_normal((c.dims.batch, c.memory_seq, c.dims.embed), c.seed + 1, c.scale)
    return {
        "x": hidden_states(c),
        "memory": memory,
        "keep": c.keep,
        "memory_keep": c.memory_keep,
        "causal": c.options["causal"],
    }


register(
    LayerPair(
        name="decoder_layer",
        ane_layer="TransformerDecoderLayerANE",
        baseline="torch.nn.TransformerDecoderLayer",
        cases=_decoder_cases,
        make_baseline=_torch_decoder_layer,
        transfer=lambda base, c: porting.from_decoder_layer(base),
        inputs=_decoder_inputs,
        run_baseline=_run_torch_decoder_layer,
        run_ane=lambda m, i: from_bc1s(
            m(
                to_bc1s(i["x"]),
                to_bc1s(i["memory"]),
                attention_mask=i["keep"],
                memory_mask=i["memory_keep"],
                causal=i["causal"],
            )
        ),
        compared_positions=lambda c: both_masks(
            query_rows_with_keys(c.keep, c.dims.seq, c.options["causal"]), memory_rows(c)
        ),
    )
)
