"""The registry of layer pairs: each ANE layer beside its PyTorch baseline.

A pair says how to draw cases (shapes, masks, options), how to build the seeded baseline, which public
porting function moves its weights into the ANE layer, and how to call each side on the same inputs.
Registering a pair gives it every property test in ``tests/layers/test_layer_pairs.py`` and a row in
the layer table. Outputs are compared in (B, S, C); query positions whose keys are all masked are left
out of the comparison (baselines disagree there: NaN in torch, a uniform average in transformers), and
are checked to be finite on the ANE side instead.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from hypothesis import strategies as st
from torch import nn

from ane_layers import from_bc1s, porting, to_bc1s
from ane_layers.feed_forward import make_activation

from . import strategies as s
from .model_zoo import without_fast_path


@dataclass(frozen=True)
class Case:
    dims: s.Dims
    seed: int
    scale: float = 1.0
    keep: torch.Tensor | None = None  # (B, S) bool, True = attend
    memory_seq: int = 0
    memory_keep: torch.Tensor | None = None
    options: dict = field(default_factory=dict)

    def describe(self) -> str:
        d = self.dims
        parts = [
            f"batch={d.batch}",
            f"seq={d.seq}",
            f"heads={d.heads}",
            f"head_dim={d.head_dim}",
            f"embed={d.embed}",
            f"scale={self.scale}",
        ]
        if self.keep is not None:
            parts.append(f"padded keys per row={(~self.keep).sum(dim=1).tolist()}")
        if self.memory_seq:
            parts.append(f"memory_seq={self.memory_seq}")
        if self.memory_keep is not None:
            parts.append(f"padded memory keys per row={(~self.memory_keep).sum(dim=1).tolist()}")
        parts += [f"{k}={v}" for k, v in self.options.items()]
        return "case: " + ", ".join(parts)


@dataclass(frozen=True)
class LayerPair:
    name: str
    ane_layer: str
    baseline: str
    cases: Callable[..., st.SearchStrategy]  # cases(scales=...) -> strategy of Case
    make_baseline: Callable[[Case], nn.Module]
    # transfer and run_baseline take the pair's own baseline class (nn.Linear, nn.MultiheadAttention...)
    transfer: Callable[[Any, Case], nn.Module]
    inputs: Callable[[Case], dict]
    run_baseline: Callable[[Any, dict], torch.Tensor]
    run_ane: Callable[[nn.Module, dict], torch.Tensor]
    compared_positions: Callable[[Case], torch.Tensor | None] = lambda case: None


REGISTRY: dict[str, LayerPair] = {}


def register(pair: LayerPair) -> LayerPair:
    if pair.name in REGISTRY:
        raise ValueError(f"layer pair {pair.name!r} is registered twice")
    REGISTRY[pair.name] = pair
    return pair


# ---- shared pieces ------------------------------------------------------------------------------------


def randomize_parameters(module: nn.Module, seed: int) -> nn.Module:
    """Seeded random weights everywhere: default inits (LayerNorm 1 and 0, zero biases) hide bugs."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(module.named_parameters()):
            noise = torch.randn(p.shape, generator=generator, dtype=p.dtype)
            if p.dim() >= 2 and "embeddings" not in name:
                p.copy_(noise / p.shape[1] ** 0.5)
            elif p.dim() >= 2:
                p.copy_(noise)
            elif name.endswith("bias"):
                p.copy_(0.2 * noise)
            else:  # norm scales
                p.copy_(1.0 + 0.3 * noise)
    return module.eval()


def _hidden(case: Case, seq: int | None = None, seed_offset: int = 0) -> torch.Tensor:
    d = case.dims
    return s.seeded_normal(
        (d.batch, d.seq if seq is None else seq, d.embed), case.seed + seed_offset, case.scale
    )


def _run_bc1s(layer: nn.Module, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    return from_bc1s(layer(to_bc1s(x), *args, **kwargs))


def _mask_as(keep: torch.Tensor | None, dtype: torch.dtype):
    return None if keep is None else keep.to(dtype)


def _query_rows_with_keys(keep: torch.Tensor | None, seq: int, causal: bool) -> torch.Tensor | None:
    """(B, S_q) True where a query position can attend to at least one key."""
    if keep is None and not causal:
        return None
    batch = keep.shape[0] if keep is not None else 1
    allowed = torch.ones(batch, seq, seq, dtype=torch.bool)  # (B, S_k, S_q)
    if keep is not None:
        allowed &= keep[:, :, None]
    if causal:
        allowed &= torch.ones(seq, seq, dtype=torch.bool).tril().T[None]
    return allowed.any(dim=1)


def _both(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    if a is None or b is None:
        return a if b is None else b
    return a & b


def _hf_additive_mask(keep: torch.Tensor | None, dtype=torch.float32) -> torch.Tensor | None:
    """The (B, 1, 1, S) additive mask transformers' eager attention receives (finfo.min at padding)."""
    if keep is None:
        return None
    return (~keep)[:, None, None, :].to(dtype) * torch.finfo(dtype).min


def _first(output):
    return output[0] if isinstance(output, tuple) else output


@st.composite
def _cases(
    draw,
    *,
    scales=s.INPUT_SCALES,
    masks: bool = True,
    memory: bool = False,
    options: dict | None = None,
    max_seq: int = 512,
    max_heads: int = 16,
):
    dims = draw(s.layer_dims(max_seq=max_seq, max_heads=max_heads))
    keep = draw(s.keep_masks(dims.batch, dims.seq)) if masks else None
    memory_seq, memory_keep = 0, None
    if memory:
        memory_seq = draw(s.sequence_lengths(max_seq))
        # Keep memory within the same compute budget as the targets.
        memory_seq = max(1, min(memory_seq, s.MAC_BUDGET // max(1, dims.batch * dims.embed * dims.embed)))
        memory_keep = draw(s.keep_masks(dims.batch, memory_seq)) if masks else None
    drawn = {k: draw(v) for k, v in (options or {}).items()}
    return Case(
        dims=dims,
        seed=draw(s.seeds()),
        scale=draw(st.sampled_from(list(scales))),
        keep=keep,
        memory_seq=memory_seq,
        memory_keep=memory_keep,
        options=drawn,
    )


# ---- torch.nn pairs -----------------------------------------------------------------------------------


def _linear_cases(scales=s.INPUT_SCALES):
    return _cases(
        scales=scales, masks=False, options={"out_features": st.integers(1, 300), "bias": st.booleans()}
    )


register(
    LayerPair(
        name="linear",
        ane_layer="LinearANE",
        baseline="torch.nn.Linear",
        cases=_linear_cases,
        make_baseline=lambda c: randomize_parameters(
            nn.Linear(c.dims.embed, c.options["out_features"], bias=c.options["bias"]), c.seed
        ),
        transfer=lambda base, c: porting.from_linear(base),
        inputs=lambda c: {"x": _hidden(c)},
        run_baseline=lambda m, i: m(i["x"]),
        run_ane=lambda m, i: _run_bc1s(m, i["x"]),
    )
)


def _layer_norm_cases(scales=s.INPUT_SCALES):
    return _cases(scales=scales, masks=False, options={"eps": s.layer_norm_eps()})


register(
    LayerPair(
        name="layer_norm",
        ane_layer="LayerNormANE",
        baseline="torch.nn.LayerNorm",
        cases=_layer_norm_cases,
        make_baseline=lambda c: randomize_parameters(
            nn.LayerNorm(c.dims.embed, eps=c.options["eps"]), c.seed
        ),
        transfer=lambda base, c: porting.from_layer_norm(base),
        inputs=lambda c: {"x": _hidden(c)},
        run_baseline=lambda m, i: m(i["x"]),
        run_ane=lambda m, i: _run_bc1s(m, i["x"]),
    )
)


def _feed_forward_cases(scales=s.INPUT_SCALES):
    return _cases(scales=scales, masks=False, options={"activation": s.activations()})


def _torch_mlp(c: Case) -> nn.Module:
    act = make_activation(c.options["activation"])
    return randomize_parameters(
        nn.Sequential(nn.Linear(c.dims.embed, c.dims.ffn), act, nn.Linear(c.dims.ffn, c.dims.embed)), c.seed
    )


register(
    LayerPair(
        name="feed_forward",
        ane_layer="FeedForwardANE",
        baseline="torch.nn.Sequential(Linear, ReLU|GELU|GELU(tanh), Linear)",
        cases=_feed_forward_cases,
        make_baseline=_torch_mlp,
        transfer=lambda base, c: porting.from_feed_forward(base),
        inputs=lambda c: {"x": _hidden(c)},
        run_baseline=lambda m, i: m(i["x"]),
        run_ane=lambda m, i: _run_bc1s(m, i["x"]),
    )
)


# Attention pairs draw inputs up to 10 (scores spread about 100); LayerNorm and the linear layers cover
# the large magnitudes. At 1e3 scores spread about 1e6, which breaks two things that are not bugs:
# - the additive mask: MASK_SENTINEL (-1e4) only holds while a row's scores spread less than about 1e4,
#   so padded keys leak back (tests/layers/test_fp16.py pins that boundary down);
# - the comparison: the softmax is an argmax there, and two keys within fp32 rounding of each other
#   (about 0.1 at 1e6, likely among hundreds of keys) swap places between two summation orders.
ATTENTION_SCALES = tuple(x for x in s.INPUT_SCALES if x <= 10.0)


def _self_attention_cases(scales=ATTENTION_SCALES):
    return _cases(scales=scales, options={"causal": st.booleans(), "mask_dtype": s.mask_dtypes()})


def _torch_self_attention(m: nn.MultiheadAttention, i: dict) -> torch.Tensor:
    x, causal = i["x"], i["causal"]
    attn_mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1]) if causal else None
    padding = None if i["keep"] is None else ~i["keep"]
    return m(x, x, x, key_padding_mask=padding, attn_mask=attn_mask, need_weights=False, is_causal=causal)[0]


def _self_attention_inputs(c: Case) -> dict:
    return {
        "x": _hidden(c),
        "keep": c.keep,
        "causal": c.options["causal"],
        "ane_mask": _mask_as(c.keep, c.options["mask_dtype"]),
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
        run_ane=lambda m, i: _run_bc1s(m, i["x"], attention_mask=i["ane_mask"], causal=i["causal"]),
        compared_positions=lambda c: _query_rows_with_keys(c.keep, c.dims.seq, c.options["causal"]),
    )
)


def _chunked_attention_cases(scales=ATTENTION_SCALES):
    return _cases(
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
        run_ane=lambda m, i: _run_bc1s(m, i["x"], attention_mask=i["ane_mask"], causal=i["causal"]),
        compared_positions=lambda c: _query_rows_with_keys(c.keep, c.dims.seq, c.options["causal"]),
    )
)


def _cross_attention_cases(scales=ATTENTION_SCALES):
    return _cases(
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
        "x": _hidden(c),
        "memory": memory,
        "memory_keep": c.memory_keep,
        "ane_mask": _mask_as(c.memory_keep, c.options["mask_dtype"]),
    }


def _memory_rows(c: Case) -> torch.Tensor | None:
    if c.memory_keep is None:
        return None
    return c.memory_keep.any(dim=1)[:, None].expand(c.dims.batch, c.dims.seq)


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
        compared_positions=_memory_rows,
    )
)


def _encoder_cases(scales=ATTENTION_SCALES):
    return _cases(
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
        activation=make_activation(c.options["activation"]),
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
        inputs=lambda c: {"x": _hidden(c), "keep": c.keep, "causal": c.options["causal"]},
        run_baseline=_run_torch_encoder_layer,
        run_ane=lambda m, i: _run_bc1s(m, i["x"], attention_mask=i["keep"], causal=i["causal"]),
        compared_positions=lambda c: _query_rows_with_keys(c.keep, c.dims.seq, c.options["causal"]),
    )
)


def _decoder_cases(scales=ATTENTION_SCALES):
    return _cases(
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
        activation=make_activation(c.options["activation"]),
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
        "x": _hidden(c),
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
        compared_positions=lambda c: _both(
            _query_rows_with_keys(c.keep, c.dims.seq, c.options["causal"]), _memory_rows(c)
        ),
    )
)


# ---- Hugging Face transformers pairs (eager attention) ----------------------------------------------


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
        return _first(m(x, x, x, mask))
    return _first(m(x, attention_mask=_hf_additive_mask(keep)))


register(
    LayerPair(
        name="distilbert_attention",
        ane_layer="MultiHeadAttentionANE",
        baseline="transformers DistilBERT self-attention (eager)",
        cases=lambda scales=ATTENTION_SCALES: _cases(scales=scales),
        make_baseline=_distilbert_attention_baseline,
        transfer=lambda base, c: porting.from_distilbert_attention(base),
        inputs=lambda c: {"x": _hidden(c), "keep": c.keep},
        run_baseline=_run_distilbert_attention,
        run_ane=lambda m, i: _run_bc1s(m, i["x"], attention_mask=i["keep"]),
        compared_positions=lambda c: _query_rows_with_keys(c.keep, c.dims.seq, False),
    )
)


def _hf_block_cases(scales=ATTENTION_SCALES):
    return _cases(scales=scales, options={"activation": st.sampled_from(["gelu", "relu", "gelu_new"])})


def _distilbert_block_baseline(c: Case) -> nn.Module:
    from transformers.models.distilbert.modeling_distilbert import TransformerBlock

    return randomize_parameters(TransformerBlock(_distilbert_config(c, c.options["activation"])), c.seed)


def _run_distilbert_block(m: nn.Module, i: dict) -> torch.Tensor:
    x, keep = i["x"], i["keep"]
    if "x" in inspect.signature(m.forward).parameters:  # transformers 4.x: (x, attn_mask (B, S))
        mask = torch.ones(x.shape[:2], dtype=torch.long) if keep is None else keep.long()
        return _first(m(x, attn_mask=mask))
    return _first(m(x, attention_mask=_hf_additive_mask(keep)))


register(
    LayerPair(
        name="distilbert_block",
        ane_layer="TransformerEncoderLayerANE (post-norm)",
        baseline="transformers DistilBERT TransformerBlock (eager)",
        cases=_hf_block_cases,
        make_baseline=_distilbert_block_baseline,
        transfer=lambda base, c: porting.from_distilbert_block(base),
        inputs=lambda c: {"x": _hidden(c), "keep": c.keep},
        run_baseline=_run_distilbert_block,
        run_ane=lambda m, i: _run_bc1s(m, i["x"], attention_mask=i["keep"]),
        compared_positions=lambda c: _query_rows_with_keys(c.keep, c.dims.seq, False),
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
        inputs=lambda c: {"x": _hidden(c), "keep": c.keep},
        run_baseline=lambda m, i: _first(m(i["x"], attention_mask=_hf_additive_mask(i["keep"]))),
        run_ane=lambda m, i: _run_bc1s(m, i["x"], attention_mask=i["keep"]),
        compared_positions=lambda c: _query_rows_with_keys(c.keep, c.dims.seq, False),
    )
)


def _embedding_cases(scales=(1.0,)):
    # Embedding tables are drawn from the seed; input magnitude does not apply to token ids.
    return _cases(scales=(1.0,), masks=False, options={"vocab_size": st.integers(2, 1000)})


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
