"""Hugging Face transformers encoder modules (eager attention) beside their ANE twins."""

from __future__ import annotations

import inspect

import torch
from hypothesis import strategies as st
from torch import nn

from ane_layers import from_bc1s, porting

from .registry import (
    ATTENTION_SCALES,
    Case,
    LayerPair,
    drawn_cases,
    first_output,
    hf_additive_mask,
    hidden_states,
    query_rows_with_keys,
    randomize_parameters,
    register,
    run_bc1s,
)


def _distilbert_config(c: Case, activation: str = "gelu"):
    from transformers import DistilBertConfig

    config = DistilBertConfig(
        dim=c.dims.embed,
        n_heads=c.dims.heads,
        hidden_dim=c.dims.ffn,
        dropout=0.0,
        attention_dropout=0.0,
        activation=activation,
        vocab_size=64,
        max_position_embeddings=max(512, c.dims.seq),
    )
    config._attn_implementation = "eager"
    return config


def _bert_config(c: Case, activation: str = "gelu"):
    from transformers import BertConfig

    config = BertConfig(
        hidden_size=c.dims.embed,
        num_attention_heads=c.dims.heads,
        intermediate_size=c.dims.ffn,
        hidden_act=activation,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        vocab_size=c.options.get("vocab_size", 64),
        max_position_embeddings=max(512, c.dims.seq),
        type_vocab_size=2,
    )
    config._attn_implementation = "eager"
    return config


def _distilbert_attention_baseline(c: Case) -> nn.Module:
    from transformers.models.distilbert import modeling_distilbert as md

    # transformers >= 5 names it DistilBertSelfAttention; 4.x MultiHeadSelfAttention.
    # (mypy sees the installed transformers: one of the two names is always missing)
    cls = getattr(md, "DistilBertSelfAttention", None) or md.MultiHeadSelfAttention  # type: ignore[attr-defined]
    return randomize_parameters(cls(_distilbert_config(c)), c.seed)


def _run_distilbert_attention(m: nn.Module, i: dict) -> torch.Tensor:
    x, keep = i["x"], i["keep"]
    if "query" in inspect.signature(m.forward).parameters:  # transformers 4.x: (query, key, value, mask)
        mask = torch.ones(x.shape[:2], dtype=torch.long) if keep is None else keep.long()
        return first_output(m(x, x, x, mask))
    return first_output(m(x, attention_mask=hf_additive_mask(keep)))


register(
    LayerPair(
        name="distilbert_attention",
        ane_layer="MultiHeadAttentionANE",
        baseline="transformers DistilBERT self-attention (eager)",
        cases=lambda scales=ATTENTION_SCALES: drawn_cases(scales=scales),
        make_baseline=_distilbert_attention_baseline,
        transfer=lambda base, c: porting.from_distilbert_attention(base),
        inputs=lambda c: {"x": hidden_states(c), "keep": c.keep},
        run_baseline=_run_distilbert_attention,
        run_ane=lambda m, i: run_bc1s(m, i["x"], attention_mask=i["keep"]),
        compared_positions=lambda c: query_rows_with_keys(c.keep, c.dims.seq, False),
    )
)


def _hf_block_cases(scales=ATTENTION_SCALES):
    return drawn_cases(scales=scales, options={"activation": st.sampled_from(["gelu", "relu", "gelu_new"])})


def _distilbert_block_baseline(c: Case) -> nn.Module:
    from transformers.models.distilbert.modeling_distilbert import TransformerBlock

    return randomize_parameters(TransformerBlock(_distilbert_config(c, c.options["activation"])), c.seed)


def _run_distilbert_block(m: nn.Module, i: dict) -> torch.Tensor:
    x, keep = i["x"], i["keep"]
    if "x" in inspect.signature(m.forward).parameters:  # transformers 4.x: (x, attn_mask (B, S))
        mask = torch.ones(x.shape[:2], dtype=torch.long) if keep is None else keep.long()
        return first_output(m(x, attn_mask=mask))
    return first_output(m(x, attention_mask=hf_additive_mask(keep)))


register(
    LayerPair(
        name="distilbert_block",
        ane_layer="TransformerEncoderLayerANE (post-norm)",
        baseline="transformers DistilBERT TransformerBlock (eager)",
        cases=_hf_block_cases,
        make_baseline=_distilbert_block_baseline,
        transfer=lambda base, c: porting.from_distilbert_block(base),
        inputs=lambda c: {"x": hidden_states(c), "keep": c.keep},
        run_baseline=_run_distilbert_block,
        run_ane=lambda m, i: run_bc1s(m, i["x"], attention_mask=i["keep"]),
        compared_positions=lambda c: query_rows_with_keys(c.keep, c.dims.seq, False),
    )
)


def _bert_layer_baseline(c: Case) -> nn.Module:
    from transformers.models.bert.modeling_bert import BertLayer

    return randomize_parameters(BertLayer(_bert_config(c, c.options["activation"])), c.seed)


register(
    LayerPair(
        name="bert_layer",
        ane_layer="TransformerEncoderLayerANE (post-norm)",
        baseline="transformers BertLayer (eager attention)",
        cases=_hf_block_cases,
        make_baseline=_bert_layer_baseline,
        transfer=lambda base, c: porting.from_bert_layer(base),
        inputs=lambda c: {"x": hidden_states(c), "keep": c.keep},
        run_baseline=lambda m, i: first_output(m(i["x"], attention_mask=hf_additive_mask(i["keep"]))),
        run_ane=lambda m, i: run_bc1s(m, i["x"], attention_mask=i["keep"]),
        compared_positions=lambda c: query_rows_with_keys(c.keep, c.dims.seq, False),
    )
)


def _embedding_cases(scales=(1.0,)):
    # Embedding tables are drawn from the seed; input magnitude does not apply to token ids.
    return drawn_cases(scales=(1.0,), masks=False, options={"vocab_size": st.integers(2, 1000)})


def _bert_embeddings_baseline(c: Case) -> nn.Module:
    from transformers.models.bert.modeling_bert import BertEmbeddings

    return randomize_parameters(BertEmbeddings(_bert_config(c)), c.seed)


def _token_inputs(c: Case) -> dict:
    generator = torch.Generator().manual_seed(c.seed + 2)
    shape = (c.dims.batch, c.dims.seq)
    return {
        "ids": torch.randint(0, c.options["vocab_size"], shape, generator=generator),
        "types": torch.randint(0, 2, shape, generator=generator),
    }


register(
    LayerPair(
        name="embeddings",
        ane_layer="EmbeddingsANE",
        baseline="transformers BertEmbeddings",
        cases=_embedding_cases,
        make_baseline=_bert_embeddings_baseline,
        transfer=lambda base, c: porting.from_bert_embeddings(base),
        inputs=_token_inputs,
        run_baseline=lambda m, i: m(input_ids=i["ids"], token_type_ids=i["types"]),
        run_ane=lambda m, i: from_bc1s(m(i["ids"], i["types"])),
    )
)
