"""Llama-family causal language models in the (B, C, 1, S) layout: Llama, Qwen 2 and Qwen 3.

Architecture (the math of transformers' ``modeling_llama.py``): token embeddings, then pre-norm decoder
layers (RMS norm, grouped-query self-attention with rotary positions, residual; RMS norm, SwiGLU
feed-forward, residual), a final RMS norm and the LM head (tied to the embeddings or not). The three
families differ only in details the config or the family fixes:

- llama: optional biases on all four attention projections (``attention_bias``) and on the MLP
  (``mlp_bias``); rope scalings default, linear, llama3.
- qwen2: biases on q, k and v (never on the output projection or the MLP).
- qwen3: RMS norms over each head's queries and keys (``q_norm``, ``k_norm``) before RoPE; optional
  ``attention_bias``.

Sliding-window layers, mixtures of experts and other rope scalings are refused by name.

The models own a ``KVCache`` of fixed capacity (``cache_capacity`` slots for ``batch_size`` rows) and
run one call for both phases (see ``LlamaModelANE.forward``): a prefill of N <= ``prefill_length``
tokens from a cache slot, and a decode step of 1 token at a slot. Shapes depend only on those fixed
sizes and N, so the same module traces for a converted program with state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ane_layers import MASK_SENTINEL, from_bc1s, to_bc1s
from ane_layers.checks import is_tracing
from ane_layers.decoder_layers import CausalDecoderLayerANE, LMHeadANE
from ane_layers.grouped_query_attention import check_head_counts
from ane_layers.kv_cache import KVCache, check_slots
from ane_layers.rms_norm import RMSNormANE
from ane_layers.rotary import RotaryEmbeddingANE, rope_settings

from .common import ANEConfig, finish, load_checkpoint, resolve_layer_norm_eps

# Defaults for the fixed sizes: a context of 1024 keeps SmolLM2-135M's fp32 cache at 47 MB.
DEFAULT_CACHE_CAPACITY = 1024
DEFAULT_PREFILL_LENGTH = 256

# Key regexes dropped from a checkpoint: recomputed rotary frequencies (older transformers kept them).
IGNORED = (r"rotary_emb\.inv_freq$",)


@dataclass(frozen=True)
class DecoderConfig:
    """The decoder-specific sizes of an optimized model (kept as ``model.decoder_config``)."""

    model_type: str
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    rope_theta: float
    rope_scaling: dict | None
    rms_norm_eps: float
    tie_word_embeddings: bool
    qkv_bias: bool
    output_bias: bool
    mlp_bias: bool
    qk_norm: bool
    cache_capacity: int
    prefill_length: int
    batch_size: int
    eos_token_id: int | list[int] | None = None
    pad_token_id: int | None = None


class LlamaModelANE(nn.Module):
    """The decoder stack with its KV cache. ``forward`` returns ``(hidden_states,)`` in (B, C, 1, N)."""

    def __init__(self, c: DecoderConfig):
        super().__init__()
        self.config = c
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList(
            CausalDecoderLayerANE(
                c.hidden_size,
                c.num_heads,
                c.num_kv_heads,
                c.head_dim,
                c.intermediate_size,
                eps=c.rms_norm_eps,
                qkv_bias=c.qkv_bias,
                output_bias=c.output_bias,
                mlp_bias=c.mlp_bias,
                qk_norm=c.qk_norm,
            )
            for _ in range(c.num_layers)
        )
        self.norm = RMSNormANE(c.hidden_size, eps=c.rms_norm_eps)
        self.rotary_emb = RotaryEmbeddingANE(
            c.head_dim, c.rope_theta, c.rope_scaling, c.max_position_embeddings
        )
        self.kv_cache = KVCache(c.num_layers, c.batch_size, c.num_kv_heads, c.head_dim, c.cache_capacity)

    def forward(
        self,
        input_ids: torch.Tensor,
        position=0,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ):
        """Run N tokens written to cache slots ``position .. position + N - 1``.

        ``input_ids`` (B, N), int32 or int64, B the cache's batch size, 1 <= N <= ``prefill_length``.
        ``attention_mask`` (B, L) over cache slots 0..L-1 in the Hugging Face convention (1 = a real
        token, 0 = padding), ``position + N <= L <= capacity``; None means every slot is real.
        ``position_ids`` (B, N) are the rotary positions (default ``position + arange(N)``; with left
        padding they lag the slots, as transformers' generate computes them).
        Query ``i`` sees slots ``0 .. position + i`` that the mask keeps; later slots are hidden by the
        causal part of the mask (they hold zeros or stale keys).
        """
        c = self.config
        n = self._check_tokens(input_ids)
        check_slots(position, n, c.cache_capacity)
        if position_ids is None:
            position_ids = (torch.arange(n, device=input_ids.device) + position)[None].expand(
                input_ids.shape[0], n
            )
        self._check_positions(position_ids, input_ids)
        dtype = self.embed_tokens.weight.dtype
        self._check_cache(dtype)
        bias = self._attention_bias(attention_mask, position, n, dtype)
        cos, sin = self.rotary_emb(position_ids, dtype)
        # contiguous: torch's CPU conv takes a slow path on the transposed view (a no-op in a program)
        x = to_bc1s(self.embed_tokens(input_ids)).contiguous()
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, bias, self.kv_cache, i, position)
        return (self.norm(x),)

    def reset_cache(self, batch_size: int | None = None) -> None:
        """Empty the cache; with ``batch_size`` different from the current one, make a new cache (torch
        only: a converted program has its batch fixed)."""
        if batch_size is None or batch_size == self.kv_cache.batch_size:
            self.kv_cache.reset()
            return
        c = self.kv_cache
        self.kv_cache = KVCache(
            c.num_layers, batch_size, c.num_kv_heads, c.head_dim, c.capacity, dtype=c.k_cache.dtype
        ).to(c.k_cache.device)

    def set_cache(self, cache: KVCache) -> None:
        """Use ``cache`` (e.g. one kept from an earlier conversation); it must have this model's shapes
        and dtype for its batch size and capacity."""
        expected = KVCache(
            self.config.num_layers,
            cache.batch_size,
            self.config.num_kv_heads,
            self.config.head_dim,
            self.config.cache_capacity,
        )
        if not isinstance(cache, KVCache) or cache.shapes != expected.shapes:
            got = cache.shapes if isinstance(cache, KVCache) else type(cache).__name__
            raise ValueError(
                f"set_cache: expected a KVCache of shapes {expected.shapes} (this model's layers, "
                f"kv heads, head dim and capacity), got {got}"
            )
        self.kv_cache = cache
        self._check_cache(self.embed_tokens.weight.dtype)

    # ---- input checks: each names what was expected and what came -----------------------------------

    def _check_tokens(self, input_ids) -> int:
        c, batch = self.config, self.kv_cache.batch_size
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
            got = tuple(input_ids.shape) if isinstance(input_ids, torch.Tensor) else type(input_ids).__name__
            raise ValueError(f"input_ids: expected shape (B, N) = ({batch}, N), got {got}")
        if input_ids.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"input_ids: expected int32 or int64 token ids, got {input_ids.dtype}")
        b, n = input_ids.shape
        if b != batch:
            raise ValueError(
                f"input_ids: expected batch {batch} (the KV cache's; reset_cache(batch_size) "
                f"changes it), got shape {tuple(input_ids.shape)}"
            )
        if not 1 <= n <= c.prefill_length:
            raise ValueError(
                f"input_ids: expected 1 to {c.prefill_length} tokens (the prefill length), got {n}"
            )
        if not is_tracing() and bool(((input_ids < 0) | (input_ids >= c.vocab_size)).any()):
            raise ValueError(
                f"input_ids: expected ids in 0..{c.vocab_size - 1}, got "
                f"{int(input_ids.min())}..{int(input_ids.max())}"
            )
        return n

    def _check_positions(self, position_ids, input_ids) -> None:
        limit = self.config.max_position_embeddings
        if not isinstance(position_ids, torch.Tensor) or tuple(position_ids.shape) != tuple(input_ids.shape):
            got = tuple(position_ids.shape) if isinstance(position_ids, torch.Tensor) else position_ids
            raise ValueError(
                f"position_ids: expected shape {tuple(input_ids.shape)} (that of input_ids), got {got}"
            )
        if not is_tracing() and bool(((position_ids < 0) | (position_ids >= limit)).any()):
            raise ValueError(
                f"position_ids: expected rotary positions in 0..{limit - 1} "
                f"(max_position_embeddings {limit}), got {int(position_ids.min())}.."
                f"{int(position_ids.max())}"
            )

    def _check_cache(self, dtype: torch.dtype) -> None:
        cache = self.kv_cache
        if cache.k_cache.dtype != dtype or cache.v_cache.dtype != dtype:
            raise ValueError(f"KV cache: expected dtype {dtype} (the model's), got {cache.k_cache.dtype}")

    def _attention_bias(self, attention_mask, position, n: int, dtype) -> torch.Tensor:
        """(B or 1, capacity, 1, N): 0 where query i may read slot k, ``MASK_SENTINEL`` elsewhere."""
        capacity, batch = self.config.cache_capacity, self.kv_cache.batch_size
        device = self.embed_tokens.weight.device
        slots = torch.arange(capacity, device=device)[None, :, None, None]
        queries = (torch.arange(n, device=device) + position)[None, None, None, :]
        bias = (slots > queries).to(dtype) * MASK_SENTINEL  # causal over cache slots, finite sentinel
        if attention_mask is None:
            return bias
        if (
            not isinstance(attention_mask, torch.Tensor)
            or attention_mask.dim() != 2
            or attention_mask.shape[0] != batch
            or not int(position) + n <= attention_mask.shape[1] <= capacity
        ):
            got = tuple(attention_mask.shape) if isinstance(attention_mask, torch.Tensor) else attention_mask
            raise ValueError(
                f"attention_mask: expected shape (B, L) = ({batch}, L) over cache slots with "
                f"{int(position) + n} <= L <= {capacity}, got {got}"
            )
        if not is_tracing() and bool(((attention_mask != 0) & (attention_mask != 1)).any()):
            raise ValueError("attention_mask: expected only 0 (padding) and 1 (a real token)")
        keep = torch.ones(batch, capacity, dtype=dtype, device=device)
        keep[:, : attention_mask.shape[1]] = attention_mask.to(dtype)
        return bias + ((1 - keep) * MASK_SENTINEL)[:, :, None, None]


class LlamaForCausalLMANE(nn.Module):
    """The decoder stack and its LM head. ``forward`` returns ``(logits,)`` of shape (B, N, vocab).

    Implements ``ane_models.generation.CausalLM`` (``prefill`` / ``decode_step``), the interface
    ``ane_models.generate`` drives.
    """

    def __init__(self, c: DecoderConfig):
        super().__init__()
        self.model = LlamaModelANE(c)
        self.lm_head = LMHeadANE(c.hidden_size, c.vocab_size)
        if c.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def forward(self, input_ids, position=0, attention_mask=None, position_ids=None):
        (x,) = self.model(input_ids, position, attention_mask, position_ids)
        return (from_bc1s(self.lm_head(x)),)  # logits (B, V, 1, N) -> (B, N, V), once at the end

    # ---- the CausalLM interface ---------------------------------------------------------------------

    @property
    def decoder_config(self) -> DecoderConfig:
        return self.model.config

    @property
    def batch_size(self) -> int:
        return self.model.kv_cache.batch_size

    def reset_cache(self, batch_size: int | None = None) -> None:
        self.model.reset_cache(batch_size)

    @torch.no_grad()
    def prefill(self, input_ids, position=0, position_ids=None, attention_mask=None) -> torch.Tensor:
        """Logits (B, N, V) of N prompt tokens written from cache slot ``position``."""
        return self(input_ids, position, attention_mask, position_ids)[0]

    @torch.no_grad()
    def decode_step(self, input_ids, position, position_ids=None, attention_mask=None) -> torch.Tensor:
        """Logits (B, V) of one token per row written at cache slot ``position``."""
        if isinstance(input_ids, torch.Tensor) and input_ids.dim() == 2 and input_ids.shape[1] != 1:
            raise ValueError(
                f"decode_step: expected one token per row, shape (B, 1), got {tuple(input_ids.shape)}"
            )
        return self(input_ids, position, attention_mask, position_ids)[0][:, -1]


HEADS = {"Model": LlamaModelANE, "ForCausalLM": LlamaForCausalLMANE}
FAMILIES = {"llama": "Llama", "qwen2": "Qwen2", "qwen3": "Qwen3"}


def decoder_config(
    config: Any,
    model_type: str,
    *,
    cache_capacity: int | None,
    prefill_length: int | None,
    batch_size: int | None,
    rms_norm_eps: float,
    generation_config: Any = None,
) -> DecoderConfig:
    """Read and check a transformers config of a Llama-shaped family; unsupported options raise."""
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    check_head_counts(heads, kv_heads)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    problems = []
    if getattr(config, "hidden_act", "silu") != "silu":
        problems.append(f"hidden_act={config.hidden_act!r} (supported: 'silu')")
    layer_types = getattr(config, "layer_types", None) or ()
    if getattr(config, "use_sliding_window", False) or any(t != "full_attention" for t in layer_types):
        problems.append(
            f"sliding-window attention (use_sliding_window={getattr(config, 'use_sliding_window', None)}, "
            f"layer_types={sorted(set(layer_types))}; supported: full attention only)"
        )
    for moe in ("num_experts", "num_local_experts", "n_routed_experts"):
        if getattr(config, moe, None):
            problems.append(f"mixture of experts ({moe}={getattr(config, moe)}; supported: dense MLPs only)")
    if getattr(config, "pretraining_tp", 1) not in (1, None):
        problems.append(f"pretraining_tp={config.pretraining_tp} (supported: 1)")
    if problems:
        raise ValueError(
            f"{type(config).__name__} ({model_type}): not supported by the ANE model: " + "; ".join(problems)
        )
    theta, scaling = rope_settings(config)
    max_positions = config.max_position_embeddings
    capacity = min(max_positions, DEFAULT_CACHE_CAPACITY) if cache_capacity is None else cache_capacity
    prefill = min(capacity, DEFAULT_PREFILL_LENGTH) if prefill_length is None else prefill_length
    if not isinstance(capacity, int) or not 1 <= capacity:
        raise ValueError(f"cache_capacity: expected a positive number of slots, got {capacity!r}")
    if not isinstance(prefill, int) or not 1 <= prefill <= capacity:
        raise ValueError(f"prefill_length: expected 1..{capacity} (the cache capacity), got {prefill!r}")
    biases = {
        "llama": (bool(getattr(config, "attention_bias", False)),) * 2
        + (bool(getattr(config, "mlp_bias", False)),),
        "qwen2": (True, False, False),
        "qwen3": (bool(getattr(config, "attention_bias", False)),) * 2 + (False,),
    }[model_type]
    source = generation_config if generation_config is not None else config
    return DecoderConfig(
        model_type=model_type,
        num_layers=config.num_hidden_layers,
        hidden_size=config.hidden_size,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate_size=config.intermediate_size,
        vocab_size=config.vocab_size,
        max_position_embeddings=max_positions,
        rope_theta=theta,
        rope_scaling=scaling,
        rms_norm_eps=rms_norm_eps,
        tie_word_embeddings=bool(getattr(config, "tie_word_embeddings", False)),
        qkv_bias=biases[0],
        output_bias=biases[1],
        mlp_bias=biases[2],
        qk_norm=model_type == "qwen3",
        cache_capacity=capacity,
        prefill_length=prefill,
        batch_size=1 if batch_size is None else batch_size,
        eos_token_id=getattr(source, "eos_token_id", None),
        pad_token_id=getattr(source, "pad_token_id", None),
    )


def from_hf(
    model: nn.Module,
    architecture: str,
    *,
    fp16_safe_eps: bool | float = True,
    query_chunk_size: int | None = None,
    cache_capacity: int | None = None,
    prefill_length: int | None = None,
    batch_size: int | None = None,
) -> nn.Module:
    """The ANE equivalent of a transformers Llama / Qwen 2 / Qwen 3 ``model`` (class ``architecture``)."""
    if query_chunk_size is not None:
        raise ValueError(
            f"query_chunk_size: expected None for a decoder (queries are the prefill chunk), "
            f"got {query_chunk_size}"
        )
    config: Any = model.config
    model_type = config.model_type
    eps = resolve_layer_norm_eps(config.rms_norm_eps, fp16_safe_eps)
    c = decoder_config(
        config,
        model_type,
        cache_capacity=cache_capacity,
        prefill_length=prefill_length,
        batch_size=batch_size,
        rms_norm_eps=eps,
        generation_config=getattr(model, "generation_config", None),
    )
    head = "ForCausalLM" if architecture.endswith("ForCausalLM") else "Model"
    ane = HEADS[head](c)
    state = dict(model.state_dict())
    if head == "ForCausalLM" and c.tie_word_embeddings:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]  # one Parameter, both names
    load_checkpoint(ane, state, renames=(), ignore=IGNORED)
    return finish(
        ane,
        model,
        ANEConfig(
            model_type=model_type,
            architecture=architecture,
            vocab_size=c.vocab_size,
            hidden_size=c.hidden_size,
            num_layers=c.num_layers,
            num_heads=c.num_heads,
            max_sequence_length=c.max_position_embeddings,
            layer_norm_eps=eps,
            checkpoint_layer_norm_eps=config.rms_norm_eps,
            fp16_safe_eps=fp16_safe_eps is not False,
        ),
    )


def architectures(model_type: str) -> list[str]:
    """transformers class names this module builds for ``model_type``."""
    prefix = FAMILIES[model_type]
    return [prefix + head for head in HEADS]
