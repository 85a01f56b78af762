"""The registry of layer pairs (each ANE layer beside its PyTorch baseline) and the pieces pairs share.

The pairs themselves live one module per layer family beside this one, mirroring ``ane_layers/``.

A pair says how to draw cases (shapes, masks, options), how to build the seeded baseline, which public
porting function moves its weights into the ANE layer, and how to call each side on the same inputs.
Registering a pair gives it every property test in ``tests/layers/test_layer_pairs.py`` and a row in
the layer table. Outputs are compared in (B, S, C); query positions whose keys are all masked are left
out of the comparison (baselines disagree there: NaN in torch, a uniform average in transformers), and
are checked to be finite on the ANE side instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from hypothesis import strategies as st
from torch import nn

from ane_layers import from_bc1s, to_bc1s

from .. import strategies as s


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


def hidden_states(case: Case, seq: int | None = None, seed_offset: int = 0) -> torch.Tensor:
    d = case.dims
    return s.seeded_normal(
        (d.batch, d.seq if seq is None else seq, d.embed), case.seed + seed_offset, case.scale
    )


def run_bc1s(layer: nn.Module, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    return from_bc1s(layer(to_bc1s(x), *args, **kwargs))


def mask_as(keep: torch.Tensor | None, dtype: torch.dtype):
    return None if keep is None else keep.to(dtype)


def query_rows_with_keys(keep: torch.Tensor | None, seq: int, causal: bool) -> torch.Tensor | None:
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


def both_masks(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    if a is None or b is None:
        return a if b is None else b
    return a & b


def hf_additive_mask(keep: torch.Tensor | None, dtype=torch.float32) -> torch.Tensor | None:
    """The (B, 1, 1, S) additive mask transformers' eager attention receives (finfo.min at padding)."""
    if keep is None:
        return None
    return (~keep)[:, None, None, :].to(dtype) * torch.finfo(dtype).min


def first_output(output):
    return output[0] if isinstance(output, tuple) else output


@st.composite
def drawn_cases(
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


# Attention pairs draw inputs up to 10 (scores spread about 100); LayerNorm and the linear layers cover
# the large magnitudes. At 1e3 scores spread about 1e6, which breaks two things that are not bugs:
# - the additive mask: MASK_SENTINEL (-1e4) only holds while a row's scores spread less than about 1e4,
#   so padded keys leak back (tests/layers/test_fp16.py pins that boundary down);
# - the comparison: the softmax is an argmax there, and two keys within fp32 rounding of each other
#   (about 0.1 at 1e6, likely among hundreds of keys) swap places between two summation orders.
ATTENTION_SCALES = tuple(x for x in s.INPUT_SCALES if x <= 10.0)


def memory_rows(c: Case) -> torch.Tensor | None:
    if c.memory_keep is None:
        return None
    return c.memory_keep.any(dim=1)[:, None].expand(c.dims.batch, c.dims.seq)
