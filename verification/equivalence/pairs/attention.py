"""torch.nn.MultiheadAttention beside MultiHeadAttentionANE: self, query-chunked and cross attention."""

from __future__ import annotations

import torch
from hypothesis import strategies as st
from torch import nn

from ane_layers import from_bc1s, porting, to_bc1s

from .. import strategies as s
from .registry import (
    ATTENTION_SCALES,
    Case,
    LayerPair,
    drawn_cases,
    hidden_states,
    mask_as,
    memory_rows,
    query_rows_with_keys,
    randomize_parameters,
    register,
    run_bc1s,
)


def _self_attention_cases(scales=ATTENTION_SCALES):
    return drawn_cases(scales=scales, options={"causal": st.booleans(), "mask_dtype": s.mask_dtypes()})


def _torch_self_attention(m: nn.MultiheadAttention, i: dict) -> torch.Tensor:
    x, causal = i["x"], i["causal"]
    attn_mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1]) if causal else None
    padding = None if i["keep"] is None else ~i["keep"]
    return m(x, x, x, key_padding_mask=padding, attn_mask=attn_mask, need_weights=False, is_causal=causal)[0]


def _self_attention_inputs(c: Case) -> dict:
    return {
        "x": hidden_states(c),
        "keep": c.keep,
        "causal": c.options["causal"],
        "ane_mask": mask_as(c.keep, c.options["mask_dtype"]),
    }


register(
    LayerPair(
        name="multihead_attention",
        ane_layer="MultiHeadAttentionANE",
        baseline="torch.nn.MultiheadAttention",
        cases=_self_attention_cases,
        make_baseline=lambda c: randomize_parameters(
            nn.MultiheadAttention(c.dims.embed, c.dims.heads, batch_first=True), c.seed
        ),
        transfer=lambda base, c: porting.from_multihead_attention(base),
        inputs=_self_attention_inputs,
        run_baseline=_torch_self_attention,
        run_ane=lambda m, i: run_bc1s(m, i["x"], attention_mask=i["ane_mask"], causal=i["causal"]),
        compared_positions=lambda c: query_rows_with_keys(c.keep, c.dims.seq, c.options["causal"]),
    )
)


def _chunked_attention_cases(scales=ATTENTION_SCALES):
    return drawn_cases(
        scales=scales,
        options={
            "causal": st.booleans(),
            "mask_dtype": s.mask_dtypes(),
            "query_chunk_size": st.integers(1, 96),
        },
    )


register(
    LayerPair(
        name="multihead_attention_query_chunked",
        ane_layer="MultiHeadAttentionANE(query_chunk_size=n)",
        baseline="torch.nn.MultiheadAttention",
        cases=_chunked_attention_cases,
        make_baseline=lambda c: randomize_parameters(
            nn.MultiheadAttention(c.dims.embed, c.dims.heads, batch_first=True), c.seed
        ),
        transfer=lambda base, c: porting.from_multihead_attention(
            base, query_chunk_size=c.options["query_chunk_size"]
        ),
        inputs=_self_attention_inputs,
        run_baseline=_torch_self_attention,
        run_ane=lambda m, i: run_bc1s(m, i["x"], attention_mask=i["ane_mask"], causal=i["causal"]),
        compared_positions=lambda c: query_rows_with_keys(c.keep, c.dims.seq, c.options["causal"]),
    )
)


def _cross_attention_cases(scales=ATTENTION_SCALES):
    return drawn_cases(
        scales=scales,
        memory=True,
        options={"kdim_factor": st.sampled_from([1, 2]), "mask_dtype": s.mask_dtypes()},
    )


def _cross_attention_baseline(c: Case) -> nn.Module:
    kdim = c.dims.embed * c.options["kdim_factor"]
    return randomize_parameters(
        nn.MultiheadAttention(c.dims.embed, c.dims.heads, batch_first=True, kdim=kdim, vdim=kdim), c.seed
    )


def _cross_attention_inputs(c: Case) -> dict:
    d = c.dims
    memory = s.seeded_normal((d.batch, c.memory_seq, d.embed * c.options["kdim_factor"]), c.seed + 1, c.scale)
    return {
        "x": hidden_states(c),
        "memory": memory,
        "memory_keep": c.memory_keep,
        "ane_mask": mask_as(c.memory_keep, c.options["mask_dtype"]),
    }


register(
    LayerPair(
        name="multihead_cross_attention",
        ane_layer="MultiHeadAttentionANE(key_value=memory)",
        baseline="torch.nn.MultiheadAttention(kdim, vdim)",
        cases=_cross_attention_cases,
        make_baseline=_cross_attention_baseline,
        transfer=lambda base, c: porting.from_multihead_attention(base),
        inputs=_cross_attention_inputs,
        run_baseline=lambda m, i: m(
            i["x"],
            i["memory"],
            i["memory"],
            need_weights=False,
            key_padding_mask=None if i["memory_keep"] is None else ~i["memory_keep"],
        )[0],
        run_ane=lambda m, i: from_bc1s(
            m(to_bc1s(i["x"]), to_bc1s(i["memory"]), attention_mask=i["ane_mask"])
        ),
        compared_positions=memory_rows,
    )
)
