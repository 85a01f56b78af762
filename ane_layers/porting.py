"""Weight porting from PyTorch and Hugging Face baselines into the ANE layers (and back where cheap).

Each function builds the ANE layer from the baseline's hyper-parameters and loads a state dict of
renamed baseline tensors: 2D linear weights are unsqueezed by ``LinearANE`` itself when loaded, so
the same renaming works for layers nested at any depth. The result is in the baseline's dtype,
device and training mode.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, TypeVar

import torch
from torch import nn
from torch.nn import functional as F

from .attention import MultiHeadAttentionANE
from .embeddings import EmbeddingsANE
from .feed_forward import FeedForwardANE
from .layer_norm import LayerNormANE
from .linear import LinearANE
from .transformer_layers import TransformerDecoderLayerANE, TransformerEncoderLayerANE

# A Hugging Face module (BertLayer, DistilBERT's TransformerBlock...): its submodules are read by name,
# which torch's typing of nn.Module attributes (Tensor | Module) cannot express.
HFModule = Any
_ANE = TypeVar("_ANE", bound=nn.Module)

# Hugging Face activation names -> FeedForwardANE activations.
HF_ACTIVATIONS = {"relu": "relu", "gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}


def from_linear(linear: nn.Linear) -> LinearANE:
    return LinearANE.from_linear(linear)


def to_linear(layer: LinearANE) -> nn.Linear:
    return layer.to_linear()


def from_layer_norm(norm: nn.LayerNorm, *, eps: float | None = None) -> LayerNormANE:
    return LayerNormANE.from_layer_norm(norm, eps=eps)


def to_layer_norm(layer: LayerNormANE) -> nn.LayerNorm:
    return layer.to_layer_norm()


def _load(ane: _ANE, baseline: nn.Module, state: dict[str, torch.Tensor]) -> _ANE:
    reference = next(baseline.parameters())
    ane.to(dtype=reference.dtype, device=reference.device)
    ane.load_state_dict({k: v.detach() for k, v in state.items()}, strict=True)
    ane.train(baseline.training)
    return ane


def _linear_state(prefix: str, linear: nn.Linear) -> dict[str, torch.Tensor]:
    state = {f"{prefix}.weight": linear.weight}
    if linear.bias is not None:
        state[f"{prefix}.bias"] = linear.bias
    return state


def _norm_state(prefix: str, norm: nn.LayerNorm) -> dict[str, torch.Tensor]:
    bias = norm.bias if norm.bias is not None else torch.zeros_like(norm.weight)
    return {f"{prefix}.weight": norm.weight, f"{prefix}.bias": bias}


def _multihead_attention_state(prefix: str, mha: nn.MultiheadAttention) -> dict[str, torch.Tensor]:
    if mha.bias_k is not None or mha.add_zero_attn:
        raise ValueError(
            f"nn.MultiheadAttention{' at ' + repr(prefix.rstrip('.')) if prefix else ''}: expected "
            f"add_bias_kv=False and add_zero_attn=False (not supported), got add_bias_kv="
            f"{mha.bias_k is not None}, add_zero_attn={mha.add_zero_attn}"
        )
    e, p = mha.embed_dim, prefix
    if mha._qkv_same_embed_dim:
        q_w, k_w, v_w = mha.in_proj_weight.split(e, dim=0)
    else:
        q_w, k_w, v_w = mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight
    state = {
        f"{p}q_proj.weight": q_w,
        f"{p}k_proj.weight": k_w,
        f"{p}v_proj.weight": v_w,
        f"{p}out_proj.weight": mha.out_proj.weight,
    }
    if mha.in_proj_bias is not None:
        q_b, k_b, v_b = mha.in_proj_bias.split(e, dim=0)
        state.update(
            {
                f"{p}q_proj.bias": q_b,
                f"{p}k_proj.bias": k_b,
                f"{p}v_proj.bias": v_b,
                f"{p}out_proj.bias": mha.out_proj.bias,
            }
        )
    return state


def from_multihead_attention(
    mha: nn.MultiheadAttention, *, query_chunk_size: int | None = None
) -> MultiHeadAttentionANE:
    ane = MultiHeadAttentionANE(
        mha.embed_dim,
        mha.num_heads,
        bias=mha.in_proj_bias is not None,
        kdim=mha.kdim,
        vdim=mha.vdim,
        query_chunk_size=query_chunk_size,
    )
    return _load(ane, mha, _multihead_attention_state("", mha))


def _present(tensor: torch.Tensor | None) -> torch.Tensor:
    """``tensor``, known to be there (a bias of a layer built with ``bias=True``)."""
    if tensor is None:
        raise ValueError("expected a bias tensor, got None")
    return tensor


def to_multihead_attention(ane: MultiHeadAttentionANE) -> nn.MultiheadAttention:
    """The equivalent ``nn.MultiheadAttention`` (batch_first=True)."""
    has_bias = ane.q_proj.bias is not None
    mha = nn.MultiheadAttention(
        ane.embed_dim, ane.num_heads, bias=has_bias, batch_first=True, kdim=ane.kdim, vdim=ane.vdim
    )
    mha.to(dtype=ane.q_proj.weight.dtype, device=ane.q_proj.weight.device)
    with torch.no_grad():
        weights = [p.weight[:, :, 0, 0] for p in (ane.q_proj, ane.k_proj, ane.v_proj)]
        if mha._qkv_same_embed_dim:
            mha.in_proj_weight.copy_(torch.cat(weights, dim=0))
        else:
            mha.q_proj_weight.copy_(weights[0])
            mha.k_proj_weight.copy_(weights[1])
            mha.v_proj_weight.copy_(weights[2])
        mha.out_proj.weight.copy_(ane.out_proj.weight[:, :, 0, 0])
        if has_bias:
            q_bias, k_bias, v_bias, out_bias = (
                _present(p.bias) for p in (ane.q_proj, ane.k_proj, ane.v_proj, ane.out_proj)
            )
            _present(mha.in_proj_bias).copy_(torch.cat([q_bias, k_bias, v_bias]))
            mha.out_proj.bias.copy_(out_bias)
    mha.train(ane.training)
    return mha


def from_distilbert_attention(
    attention: HFModule, *, query_chunk_size: int | None = None
) -> MultiHeadAttentionANE:
    """Hugging Face DistilBERT self-attention (``q_lin``, ``k_lin``, ``v_lin``, ``out_lin``)."""
    ane = MultiHeadAttentionANE(
        attention.q_lin.in_features, attention.n_heads, query_chunk_size=query_chunk_size
    )
    return _load(ane, attention, _distilbert_attention_state("", attention))


def _distilbert_attention_state(prefix: str, attention: HFModule) -> dict[str, torch.Tensor]:
    state = {}
    names = (("q_proj", "q_lin"), ("k_proj", "k_lin"), ("v_proj", "v_lin"), ("out_proj", "out_lin"))
    for ours, theirs in names:
        state.update(_linear_state(f"{prefix}{ours}", getattr(attention, theirs)))
    return state


def _torch_activation(activation) -> str:
    if activation is F.relu or isinstance(activation, nn.ReLU):
        return "relu"
    if activation is F.gelu or (isinstance(activation, nn.GELU) and activation.approximate == "none"):
        return "gelu"
    if isinstance(activation, nn.GELU) and activation.approximate == "tanh":
        return "gelu_tanh"
    raise ValueError(f"expected a relu or gelu activation, got {activation!r}")


def from_encoder_layer(
    layer: nn.TransformerEncoderLayer, *, query_chunk_size: int | None = None
) -> TransformerEncoderLayerANE:
    ane = TransformerEncoderLayerANE(
        layer.self_attn.embed_dim,
        layer.self_attn.num_heads,
        layer.linear1.out_features,
        activation=_torch_activation(layer.activation),
        norm_first=layer.norm_first,
        eps=layer.norm1.eps,
        bias=layer.linear1.bias is not None,
        query_chunk_size=query_chunk_size,
    )
    state = {
        **_multihead_attention_state("self_attn.", layer.self_attn),
        **_linear_state("ffn.fc1", layer.linear1),
        **_linear_state("ffn.fc2", layer.linear2),
        **_norm_state("norm1", layer.norm1),
        **_norm_state("norm2", layer.norm2),
    }
    return _load(ane, layer, state)


def from_decoder_layer(
    layer: nn.TransformerDecoderLayer, *, query_chunk_size: int | None = None
) -> TransformerDecoderLayerANE:
    ane = TransformerDecoderLayerANE(
        layer.self_attn.embed_dim,
        layer.self_attn.num_heads,
        layer.linear1.out_features,
        activation=_torch_activation(layer.activation),
        norm_first=layer.norm_first,
        eps=layer.norm1.eps,
        bias=layer.linear1.bias is not None,
        query_chunk_size=query_chunk_size,
    )
    state = {
        **_multihead_attention_state("self_attn.", layer.self_attn),
        **_multihead_attention_state("cross_attn.", layer.multihead_attn),
        **_linear_state("ffn.fc1", layer.linear1),
        **_linear_state("ffn.fc2", layer.linear2),
        **_norm_state("norm1", layer.norm1),
        **_norm_state("norm2", layer.norm2),
        **_norm_state("norm3", layer.norm3),
    }
    return _load(ane, layer, state)


def _hf_activation(name) -> str:
    if not isinstance(name, str) or name not in HF_ACTIVATIONS:
        raise ValueError(f"hidden activation: expected one of {sorted(HF_ACTIVATIONS)}, got {name!r}")
    return HF_ACTIVATIONS[name]


def _bert_layer_config(layer: HFModule) -> SimpleNamespace:
    """The config fields ``from_bert_layer`` needs, read off the layer's modules.

    transformers 4.x (4.46 to 4.57) keeps no ``config`` on ``BertSelfAttention`` (transformers 5 does).
    """
    from transformers.activations import ACT2CLS

    act = layer.intermediate.intermediate_act_fn
    names = [n for n in HF_ACTIVATIONS if type(act) is _activation_class(ACT2CLS.get(n))]
    return SimpleNamespace(
        hidden_size=layer.attention.self.query.in_features,
        num_attention_heads=layer.attention.self.num_attention_heads,
        intermediate_size=layer.intermediate.dense.out_features,
        hidden_act=names[0] if names else type(act).__name__,
        layer_norm_eps=layer.attention.output.LayerNorm.eps,
    )


def _activation_class(entry):
    return entry[0] if isinstance(entry, tuple) else entry


def from_bert_layer(
    layer: HFModule, *, eps: float | None = None, query_chunk_size: int | None = None
) -> TransformerEncoderLayerANE:
    """Hugging Face ``BertLayer`` (also RoBERTa's): post-norm encoder layer with eager attention."""
    attention = layer.attention
    config = getattr(attention.self, "config", None) or _bert_layer_config(layer)
    ane = TransformerEncoderLayerANE(
        config.hidden_size,
        config.num_attention_heads,
        config.intermediate_size,
        activation=_hf_activation(config.hidden_act),
        norm_first=False,
        eps=config.layer_norm_eps if eps is None else eps,
        query_chunk_size=query_chunk_size,
    )
    state = {
        **_linear_state("self_attn.q_proj", attention.self.query),
        **_linear_state("self_attn.k_proj", attention.self.key),
        **_linear_state("self_attn.v_proj", attention.self.value),
        **_linear_state("self_attn.out_proj", attention.output.dense),
        **_norm_state("norm1", attention.output.LayerNorm),
        **_linear_state("ffn.fc1", layer.intermediate.dense),
        **_linear_state("ffn.fc2", layer.output.dense),
        **_norm_state("norm2", layer.output.LayerNorm),
    }
    return _load(ane, layer, state)


def from_distilbert_block(
    block: HFModule, *, eps: float | None = None, query_chunk_size: int | None = None
) -> TransformerEncoderLayerANE:
    """Hugging Face DistilBERT ``TransformerBlock``: post-norm encoder layer."""
    attention, ffn = block.attention, block.ffn
    ane = TransformerEncoderLayerANE(
        attention.q_lin.in_features,
        attention.n_heads,
        ffn.lin1.out_features,
        activation=_hf_activation(block.attention.config.activation),
        norm_first=False,
        eps=block.sa_layer_norm.eps if eps is None else eps,
        query_chunk_size=query_chunk_size,
    )
    state = {
        **_linear_state("ffn.fc1", ffn.lin1),
        **_linear_state("ffn.fc2", ffn.lin2),
        **_norm_state("norm1", block.sa_layer_norm),
        **_norm_state("norm2", block.output_layer_norm),
        **_distilbert_attention_state("self_attn.", attention),
    }
    return _load(ane, block, state)


def from_feed_forward(mlp: nn.Sequential) -> FeedForwardANE:
    """``nn.Sequential(nn.Linear, activation, nn.Linear)`` (activation ReLU or GELU)."""
    kinds = [type(m).__name__ for m in mlp]
    if len(mlp) != 3 or not isinstance(mlp[0], nn.Linear) or not isinstance(mlp[2], nn.Linear):
        raise ValueError(f"from_feed_forward: expected Sequential(Linear, activation, Linear), got {kinds}")
    ane = FeedForwardANE(
        mlp[0].in_features,
        mlp[0].out_features,
        activation=_torch_activation(mlp[1]),
        bias=mlp[0].bias is not None,
    )
    return _load(ane, mlp, {**_linear_state("fc1", mlp[0]), **_linear_state("fc2", mlp[2])})


def from_bert_embeddings(
    embeddings: HFModule, *, eps: float | None = None, position_offset: int = 0
) -> EmbeddingsANE:
    """Hugging Face BERT-style embeddings (word, position, token type embeddings and ``LayerNorm``).

    DistilBERT's embeddings (no token types) port too; RoBERTa passes ``position_offset``.
    """
    words, positions = embeddings.word_embeddings, embeddings.position_embeddings
    types = getattr(embeddings, "token_type_embeddings", None)
    norm = embeddings.LayerNorm
    ane = EmbeddingsANE(
        words.num_embeddings,
        words.embedding_dim,
        positions.num_embeddings,
        type_vocab_size=types.num_embeddings if types is not None else 0,
        pad_token_id=words.padding_idx,
        eps=norm.eps if eps is None else eps,
        position_offset=position_offset,
    )
    state = {
        "word_embeddings.weight": words.weight,
        "position_embeddings.weight": positions.weight,
        **_norm_state("norm", norm),
    }
    if types is not None:
        state["token_type_embeddings.weight"] = types.weight
    return _load(ane, embeddings, state)
