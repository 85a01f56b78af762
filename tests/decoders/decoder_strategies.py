"""Hypothesis strategies and seeded transformers baselines for the decoder properties.

The baselines are transformers models built from a config with seeded weights drawn away from their
init (norm scales 1 + 0.3 N(0, 1), biases 0.2 N(0, 1)); nothing here uses the ANE code.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import torch
import transformers
from hypothesis import strategies as st

from verification.equivalence.pairs.decoder_cases import rope_scalings as pair_rope_scalings
from verification.equivalence.pairs.decoder_cases import rope_thetas

FAMILIES = ("llama", "qwen2", "qwen3")
CONFIGS = {"llama": "LlamaConfig", "qwen2": "Qwen2Config", "qwen3": "Qwen3Config"}
CAUSAL_LMS = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}
BASE_MODELS = {"llama": "LlamaModel", "qwen2": "Qwen2Model", "qwen3": "Qwen3Model"}


def seeds():
    return st.integers(0, 2**31 - 1)


def head_layouts(max_heads: int = 8):
    """(heads, kv heads): every divisor of the head count, 1 (multi-query) and equal (no grouping) too."""
    return st.integers(1, max_heads).flatmap(
        lambda h: st.tuples(st.just(h), st.sampled_from([k for k in range(1, h + 1) if h % k == 0]))
    )


def head_dims():
    """Published head dims (64 in SmolLM2 and Llama 3.2 1B, 80, 128 in Qwen 3) and small even ones."""
    return st.one_of(st.sampled_from([64, 80, 128]), st.integers(2, 24).map(lambda n: 2 * n))


def rope_scalings():
    """The pairs' rope scalings at the small original contexts these models' position counts allow."""
    return pair_rope_scalings(original_contexts=(16, 64, 256))


@dataclass(frozen=True)
class DecoderSpec:
    family: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    max_positions: int
    rope_theta: float
    rope_scaling: dict | None
    eps: float
    tied: bool
    bias: bool  # llama: attention_bias and mlp_bias; qwen3: attention_bias; qwen2: always q/k/v
    seed: int
    extra: dict = field(default_factory=dict)

    def describe(self) -> str:
        return (
            f"{self.family}: layers={self.layers} hidden={self.hidden} heads={self.heads} "
            f"kv_heads={self.kv_heads} head_dim={self.head_dim} ffn={self.intermediate} vocab={self.vocab} "
            f"max_positions={self.max_positions} theta={self.rope_theta} scaling={self.rope_scaling} "
            f"eps={self.eps} tied={self.tied} bias={self.bias} seed={self.seed}"
        )


@st.composite
def decoder_specs(draw, family: str | None = None, max_layers: int = 3, min_positions: int = 16):
    heads, kv_heads = draw(head_layouts())
    return DecoderSpec(
        family=draw(st.sampled_from(FAMILIES)) if family is None else family,
        layers=draw(st.integers(1, max_layers)),
        # transformers asks hidden_size to be a multiple of the head count, even with head_dim given
        hidden=heads * draw(st.integers(max(1, 16 // heads), max(2, 96 // heads))),
        heads=heads,
        kv_heads=kv_heads,
        head_dim=draw(head_dims()),
        intermediate=draw(st.integers(8, 160)),
        vocab=draw(st.integers(16, 300)),
        max_positions=draw(st.integers(min_positions, 512)),
        rope_theta=draw(rope_thetas()),
        rope_scaling=draw(rope_scalings()),
        eps=draw(st.sampled_from([1e-6, 1e-5])),
        tied=draw(st.booleans()),
        bias=draw(st.booleans()),
        seed=draw(seeds()),
    )


def hf_config(spec: DecoderSpec):
    cls = getattr(transformers, CONFIGS[spec.family])
    options = dict(
        vocab_size=spec.vocab,
        hidden_size=spec.hidden,
        intermediate_size=spec.intermediate,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.kv_heads,
        head_dim=spec.head_dim,
        max_position_embeddings=spec.max_positions,
        rms_norm_eps=spec.eps,
        tie_word_embeddings=spec.tied,
        eos_token_id=None,
        bos_token_id=None,
        pad_token_id=None,
        **spec.extra,
    )
    if spec.family == "llama":
        options.update(attention_bias=spec.bias, mlp_bias=spec.bias)
    elif spec.family == "qwen3":
        options.update(attention_bias=spec.bias)
    if "rope_parameters" in inspect.signature(cls.__init__).parameters:  # transformers >= 5
        options["rope_parameters"] = {
            "rope_type": "default",
            **(spec.rope_scaling or {}),
            "rope_theta": spec.rope_theta,
        }
    else:
        options.update(rope_theta=spec.rope_theta, rope_scaling=spec.rope_scaling)
    config = cls(**options)
    config._attn_implementation = "eager"
    return config


def seeded_weights(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every parameter drawn from the seed, away from transformers' init (norms at 1, biases at 0)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            noise = torch.randn(p.shape, generator=generator, dtype=p.dtype)
            if p.dim() == 2 and "embed_tokens" in name:
                p.copy_(noise)
            elif p.dim() == 2:
                p.copy_(noise / p.shape[1] ** 0.5)
            elif name.endswith("bias"):
                p.copy_(0.2 * noise)
            else:  # RMS norm scales
                p.copy_(1.0 + 0.3 * noise)
    return model.eval()


def hf_causal_lm(spec: DecoderSpec) -> torch.nn.Module:
    return seeded_weights(getattr(transformers, CAUSAL_LMS[spec.family])(hf_config(spec)), spec.seed)


def hf_base_model(spec: DecoderSpec) -> torch.nn.Module:
    return seeded_weights(getattr(transformers, BASE_MODELS[spec.family])(hf_config(spec)), spec.seed)


@dataclass(frozen=True)
class Prompt:
    ids: torch.Tensor  # (B, S) int64
    mask: torch.Tensor  # (B, S) int64, left padding

    def describe(self) -> str:
        return f"prompt {tuple(self.ids.shape)}, left pads per row {(1 - self.mask).sum(dim=1).tolist()}"


@st.composite
def prompts(draw, vocab: int, max_length: int, padded: bool = True, max_batch: int = 4):
    batch = draw(st.integers(1, max_batch))
    length = draw(st.integers(1, max_length))
    generator = torch.Generator().manual_seed(draw(seeds()))
    ids = torch.randint(0, vocab, (batch, length), generator=generator)
    mask = torch.ones_like(ids)
    if padded:
        for row in range(batch):
            pads = draw(st.integers(0, length - 1))
            mask[row, :pads] = 0
    return Prompt(ids=ids.masked_fill(mask == 0, 0), mask=mask)


def hf_dynamic_cache(config):
    """transformers' own cache (DynamicCache); 4.x builds it without the config."""
    try:
        return transformers.DynamicCache(config=config)
    except TypeError:
        return transformers.DynamicCache()


def rotary_positions(mask: torch.Tensor) -> torch.Tensor:
    """transformers' generate: positions count a row's real tokens (cumsum of the mask - 1), pads at 0."""
    return (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
