"""Hypothesis strategies for layer shapes and inputs: small functions that read like the data they make.

Sizes are bounded by a compute budget so that a property with 50 examples stays fast on 2 cores while
still reaching the edges: batch 1..8, sequence 1..512 (length 1, lengths off multiples of 32),
heads 1..16, head dims 8..128 (non-powers of two included).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import strategies as st

# Multiply-accumulates allowed per projection (tokens * width * width): keeps one example under ~50 ms.
MAC_BUDGET = 2**25


def seeds():
    return st.integers(min_value=0, max_value=2**31 - 1)


def batch_sizes(max_size: int = 8):
    return st.integers(min_value=1, max_value=max_size)


def sequence_lengths(max_length: int = 512):
    """Lengths with extra weight on 1, on multiples of 32 and on their neighbours."""
    near_multiples = [n for m in range(32, max_length + 1, 32) for n in (m - 1, m, m + 1) if n <= max_length]
    return st.one_of(st.just(1), st.sampled_from(near_multiples), st.integers(1, max_length))


def head_counts(max_heads: int = 16):
    return st.integers(min_value=1, max_value=max_heads)


def head_dims():
    """8..128, with powers of two and awkward sizes (non-powers of two, odd)."""
    return st.one_of(st.sampled_from([8, 16, 32, 64, 128]), st.integers(min_value=8, max_value=128))


# Input magnitudes from tiny to large: both ends reach fp16 limits in a layer norm (underflowing
# variances, overflowing squared deviations).
INPUT_SCALES = (1e-3, 1e-1, 1.0, 10.0, 1e3)


def layer_norm_eps():
    return st.sampled_from([1e-12, 1e-7, 1e-6, 1e-5, 1e-3])


def activations():
    return st.sampled_from(["relu", "gelu", "gelu_tanh"])


@dataclass(frozen=True)
class Dims:
    batch: int
    seq: int
    heads: int
    head_dim: int
    ffn_mult: int = 2

    @property
    def embed(self) -> int:
        return self.heads * self.head_dim

    @property
    def ffn(self) -> int:
        return self.embed * self.ffn_mult


@st.composite
def layer_dims(draw, max_batch: int = 8, max_seq: int = 512, max_heads: int = 16, budget: int = MAC_BUDGET):
    """Consistent (batch, seq, heads, head_dim); hidden size = heads * head_dim, within the budget.

    The sequence and batch are drawn first, then the width is capped so that tokens * width**2 stays
    under ``budget``; shrinking moves towards small, simple cases.
    """
    seq = draw(sequence_lengths(max_seq))
    batch = draw(batch_sizes(max_batch))
    tokens = batch * seq
    heads = draw(head_counts(max_heads))
    max_width = max(8, int((budget / tokens) ** 0.5))
    max_head_dim = max_width // heads
    if max_head_dim < 8:  # too many heads for this many tokens: fewer heads, smallest head dim
        heads = max(1, max_width // 8)
        max_head_dim = 8
    head_dim = draw(st.integers(min_value=8, max_value=min(128, max_head_dim)) | st.just(8))
    return Dims(
        batch=batch, seq=seq, heads=heads, head_dim=head_dim, ffn_mult=draw(st.sampled_from([1, 2, 4]))
    )


@st.composite
def keep_masks(draw, batch: int, seq: int, *, allow_empty_rows: bool = True):
    """(B, S) bool masks, True = attend: no padding, right padding of drawn lengths, or scattered holes.

    ``allow_empty_rows`` lets a row be all padding (a fully masked query row).
    """
    kind = draw(st.sampled_from(["none", "right", "scattered"]))
    if kind == "none":
        return torch.ones(batch, seq, dtype=torch.bool)
    low = 0 if allow_empty_rows else 1
    if kind == "right":
        lengths = draw(st.lists(st.integers(low, seq), min_size=batch, max_size=batch))
        return torch.arange(seq)[None, :] < torch.tensor(lengths)[:, None]
    generator = torch.Generator().manual_seed(draw(seeds()))
    mask = torch.rand(batch, seq, generator=generator) < draw(st.sampled_from([0.5, 0.9]))
    if not allow_empty_rows:
        mask[:, 0] = True
    return mask


def mask_dtypes():
    """Key-padding masks arrive as bool, int or float tensors."""
    return st.sampled_from([torch.bool, torch.int32, torch.int64, torch.float32])


def seeded_normal(shape, seed: int, scale: float = 1.0, dtype=torch.float32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=dtype) * scale
