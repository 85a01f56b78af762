"""What every model family shares: the ANE config record, the LayerNorm eps policy, input checks of
the attention mask, and strict loading of a Hugging Face state dict through a rename table.

Nothing here imports transformers: models are built from the public config attributes and the
state dict of the instance the user passes in.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ane_layers import attention_mask_to_bias

from .layout import DEFAULT_LAYOUT

# fp16-safe LayerNorm eps: 2**-23 (about 1.19e-7). It is exactly representable in fp16 (as a
# subnormal: 2 x 2**-24), so an fp16 program carries the same eps bit for bit as the fp32 one, and it
# is the nearest such value to the 1e-7 of the published ANE DistilBERT. The checkpoints' 1e-12 is not
# representable (coremltools stores about 6e-8 instead). The smallest *normal* fp16 value, 2**-14
# (6.1e-5), would also survive flush-to-zero, but it is not negligible against the variance of
# small-scale activations (about 1e-3 after the embeddings of a freshly initialized model), which
# would change fp32 results well beyond the 90 dB parity bound; pass it explicitly if the hardware
# turns out to flush subnormals.
FP16_SAFE_LAYER_NORM_EPS = 2.0**-23


class TrainingModeWarning(UserWarning):
    """``optimize`` got a model in training mode; the ANE model is built in eval mode (no dropout)."""


class CheckpointMismatchError(ValueError):
    """The state dict does not match the ANE model built from the config (keys missing or unexpected)."""


@dataclass(frozen=True)
class ANEConfig:
    """What ``optimize`` built and how it differs from the checkpoint (kept as ``model.ane_config``).

    ``layer_norm_eps`` is the eps every LayerNorm of the ANE model uses; ``checkpoint_layer_norm_eps``
    the one of the source model; they differ only when the fp16-safe floor was applied.
    """

    model_type: str
    architecture: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    max_sequence_length: int
    layer_norm_eps: float
    checkpoint_layer_norm_eps: float
    fp16_safe_eps: bool

    @property
    def eps_changed(self) -> bool:
        return self.layer_norm_eps != self.checkpoint_layer_norm_eps


def resolve_layer_norm_eps(checkpoint_eps: float, fp16_safe_eps: bool | float) -> float:
    """The eps to build with: the checkpoint's, raised to the fp16-safe floor when asked.

    ``fp16_safe_eps``: True uses ``FP16_SAFE_LAYER_NORM_EPS``; a float is a custom floor; False keeps
    the checkpoint's eps unchanged.
    """
    if fp16_safe_eps is False:
        return float(checkpoint_eps)
    floor = FP16_SAFE_LAYER_NORM_EPS if fp16_safe_eps is True else float(fp16_safe_eps)
    if not floor > 0:
        raise ValueError(f"fp16_safe_eps: expected True, False or a positive eps floor, "
                         f"got {fp16_safe_eps!r}")
    return max(float(checkpoint_eps), floor)


def padding_bias(attention_mask: torch.Tensor | None, input_ids: torch.Tensor, *, dtype: torch.dtype,
                 layout: str = DEFAULT_LAYOUT) -> torch.Tensor | None:
    """The (B, S) keep mask (1 = attend, 0 = padding) as an additive bias in ``dtype``, or None.

    ``dtype`` is the model's (that of its embeddings): an fp16 program then holds no fp32 mask. Shape
    (B, S, 1, 1) in the ``coreml`` layout, (B, S, 1, S) in the ``coreai`` one (``ane_models.layout``).
    Called once at the top of a model; the bias uses the finite sentinel of ``ane_layers.layout``
    (no -inf anywhere, so fp16 programs cannot produce 0 * inf = NaN).
    """
    if attention_mask is None:
        return None
    check_same_shape(attention_mask, input_ids, "attention_mask")
    query_length = int(input_ids.shape[-1]) if layout == "coreai" else None
    return attention_mask_to_bias(attention_mask, dtype=dtype, query_length=query_length)


def check_same_shape(x, input_ids: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if tuple(x.shape) != tuple(input_ids.shape):
        raise ValueError(f"{name}: expected shape {tuple(input_ids.shape)} (that of input_ids), "
                         f"got {tuple(x.shape)}")


def check_rank(x, rank: int, name: str, layout: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor of shape {layout}, got {type(x).__name__}")
    if x.dim() != rank:
        raise ValueError(f"{name}: expected shape {layout} (rank {rank}), got {tuple(x.shape)}")


def check_config(config, requirements: Iterable[tuple[str, object, Collection[object]]]) -> None:
    """Raise if a config attribute has a value the ANE model does not implement.

    ``requirements``: (attribute, default when absent, tuple of supported values).
    """
    problems = []
    for name, default, supported in requirements:
        value = getattr(config, name, default)
        if value not in supported:
            problems.append(f"{name}={value!r} (supported: {', '.join(repr(s) for s in supported)})")
    if problems:
        raise ValueError(f"{type(config).__name__}: not supported by the ANE model: {'; '.join(problems)}")


def load_checkpoint(ane_model: nn.Module, hf_state: dict[str, torch.Tensor],
                    renames: Sequence[tuple[str, str]], *, ignore: Sequence[str] = ()) -> None:
    """Copy a Hugging Face state dict into ``ane_model`` with strict semantics.

    Every key is renamed by applying each (regex, replacement) of ``renames`` in order. Keys matching
    one of the ``ignore`` regexes (non-persistent buffers, aliases of tied weights) are dropped. Any
    other key without a place in the ANE model, and any ANE parameter left without a value, raises
    ``CheckpointMismatchError`` naming them. Tensors are copied as float32 (never shared).
    """
    expected = set(ane_model.state_dict())
    renamed, unexpected = {}, []
    for key, value in hf_state.items():
        if any(re.search(pattern, key) for pattern in ignore):
            continue
        new_key = key
        for pattern, replacement in renames:
            new_key = re.sub(pattern, replacement, new_key)
        if new_key not in expected:
            unexpected.append(key if new_key == key else f"{key} (as {new_key})")
            continue
        renamed[new_key] = value.detach().to(dtype=torch.float32, copy=True)
    missing = sorted(expected - set(renamed))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys (ANE names, no checkpoint weight maps to them): {missing}")
        if unexpected:
            parts.append(f"unexpected keys (checkpoint names, no place in the ANE model): "
                         f"{sorted(unexpected)}")
        raise CheckpointMismatchError(
            f"{type(ane_model).__name__}: state dict does not match the model built from the config: "
            + "; ".join(parts)
        )
    ane_model.load_state_dict(renamed, strict=True)


def finish(ane_model: nn.Module, source: nn.Module, ane_config: ANEConfig) -> nn.Module:
    """Eval mode, float32, config attached; warn if the source model was in training mode."""
    if source.training:
        warnings.warn(
            f"optimize: {type(source).__name__} is in training mode; the ANE model is returned in eval "
            "mode (dropout off). The input model was not changed.",
            TrainingModeWarning,
            stacklevel=3,
        )
    # torch's stubs type every Module attribute as Tensor | Module; this one is a plain dataclass
    ane_model.ane_config = ane_config  # type: ignore[assignment]
    return ane_model.float().eval()


def checkpoint_layer_norm_eps(model: nn.Module) -> float:
    """The eps of the source model's LayerNorms (they must all agree)."""
    values = {m.eps for m in model.modules() if isinstance(m, nn.LayerNorm)}
    if len(values) != 1:
        raise ValueError(f"{type(model).__name__}: expected one LayerNorm eps, found {sorted(values)}")
    return values.pop()
