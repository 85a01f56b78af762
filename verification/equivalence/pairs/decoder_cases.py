"""Cases for the decoder pairs (Llama, Qwen 2, Qwen 3 modules): grouped heads, rotary settings, cache fill.

A case's ``dims.seq`` is the number of new tokens; ``options`` carry the kv heads (every divisor of the
heads), the tokens already in the cache (``past``), unused cache slots beyond them (``spare``), the
first rotary position of every row (up to the model's maximum), ``max_positions``, rope theta and
scaling, eps and biases.
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from .. import strategies as s
from .registry import Case

# Head dims of the published checkpoints (64: SmolLM2 and Llama 3.2 1B; 80; 128: Qwen 3) and small even ones.
DECODER_HEAD_DIMS = (64, 80, 128)
MAX_WIDTH = 512  # heads * head_dim
# tokens (batch * (past + new)) * width**2 per projection: keeps one example near 50 ms on 2 cores, fp16 too
MAC_BUDGET = 2**21


def rope_scalings(original_contexts=(64, 256, 1024)):
    """No scaling, linear, or llama3 scaling with ``original_max_position_embeddings`` drawn from
    ``original_contexts`` (model-level properties pass smaller ones: their models have fewer positions)."""
    return st.one_of(
        st.none(),
        st.builds(lambda f: {"rope_type": "linear", "factor": f}, st.sampled_from([2.0, 4.0, 8.0])),
        st.builds(
            lambda f, low, high, ctx: {
                "rope_type": "llama3",
                "factor": f,
                "low_freq_factor": low,
                "high_freq_factor": high,
                "original_max_position_embeddings": ctx,
            },
            st.sampled_from([8.0, 32.0]),
            st.sampled_from([1.0, 2.0]),
            st.sampled_from([4.0, 8.0]),
            st.sampled_from(list(original_contexts)),
        ),
    )


def rope_thetas():
    return st.sampled_from([100.0, 10000.0, 500000.0, 1000000.0])


@st.composite
def grouped_heads(draw, max_heads: int = 8):
    """(heads, kv heads) with every divisor of the head count as the kv head count."""
    heads = draw(st.integers(1, max_heads))
    return heads, draw(st.sampled_from([k for k in range(1, heads + 1) if heads % k == 0]))


def even_head_dims():
    return st.one_of(st.sampled_from(DECODER_HEAD_DIMS), st.integers(1, 16).map(lambda n: 2 * n))


@st.composite
def decoder_cases(draw, scales=s.INPUT_SCALES, *, cache: bool = True, max_new: int = 24):
    batch = draw(st.integers(1, 4))
    new = draw(st.one_of(st.just(1), st.integers(1, max_new)))
    past = draw(st.one_of(st.just(0), st.integers(0, 32))) if cache else 0
    width = min(MAX_WIDTH, int((MAC_BUDGET / (batch * (past + new))) ** 0.5))
    head_dim = draw(even_head_dims().filter(lambda d: d <= width) | st.integers(1, 8).map(lambda n: 2 * n))
    heads, kv_heads = draw(grouped_heads(max(1, min(8, width // head_dim))))
    max_positions = draw(st.one_of(st.just(past + new), st.integers(past + new, 8192)))
    last_start = max_positions - past - new
    starts = draw(
        st.lists(st.one_of(st.just(last_start), st.integers(0, last_start)), min_size=batch, max_size=batch)
    )
    return Case(
        dims=s.Dims(
            batch=batch, seq=new, heads=heads, head_dim=head_dim, ffn_mult=draw(st.sampled_from([1, 2, 3]))
        ),
        seed=draw(s.seeds()),
        scale=draw(st.sampled_from(list(scales))),
        options={
            "kv_heads": kv_heads,
            "past": past,
            "spare": draw(st.integers(0, 8)) if cache else 0,
            "starts": tuple(starts),
            "max_positions": max_positions,
            "rope_theta": draw(rope_thetas()),
            "rope_scaling": draw(rope_scalings()),
            "eps": draw(st.sampled_from([1e-6, 1e-5])),
            "bias": draw(st.booleans()),
        },
    )


def positions(c: Case, first: int, length: int) -> torch.Tensor:
    """(B, length) rotary positions from each row's start + ``first``."""
    return torch.tensor(c.options["starts"])[:, None] + first + torch.arange(length)[None]


def hf_config(c: Case, family: str = "llama"):
    """A transformers config of ``family`` for the case (eager attention)."""
    import inspect

    import transformers

    cls = {
        "llama": transformers.LlamaConfig,
        "qwen2": transformers.Qwen2Config,
        "qwen3": transformers.Qwen3Config,
    }[family]
    o = c.options
    options = dict(
        hidden_size=c.dims.embed,
        intermediate_size=c.dims.ffn,
        num_attention_heads=c.dims.heads,
        num_key_value_heads=o["kv_heads"],
        head_dim=c.dims.head_dim,
        max_position_embeddings=o["max_positions"],
        rms_norm_eps=o["eps"],
        num_hidden_layers=1,
        vocab_size=32,
    )
    if family == "llama":
        options.update(attention_bias=o["bias"], mlp_bias=o["bias"])
    elif family == "qwen3":
        options.update(attention_bias=o["bias"])
    if "rope_parameters" in inspect.signature(cls.__init__).parameters:
        options["rope_parameters"] = {
            "rope_type": "default",
            **(o["rope_scaling"] or {}),
            "rope_theta": o["rope_theta"],
        }
    else:
        options.update(rope_theta=o["rope_theta"], rope_scaling=o["rope_scaling"])
    config = cls(**options)
    config._attn_implementation = "eager"
    return config
