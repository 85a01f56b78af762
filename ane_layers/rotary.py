"""Rotary position embeddings (RoPE) in the (B, C, 1, S) layout, rotate-half form.

transformers' Llama family rotates each head's vector in two halves: with ``x1, x2`` the first and
second half of a head's channels and ``theta_i = position * inv_freq[i]``,
``rope(x) = x * cos + rotate_half(x) * sin`` where ``rotate_half(x) = cat(-x2, x1)`` and cos / sin
repeat ``theta`` over both halves. Here a head is a slice of the channel axis (axis 1), so the halves
are channel slices too and the sequence stays on the last axis.

The angles are computed in float32 whatever the model's dtype (as transformers does): at position
p the angle is about p radians for the fastest frequency, and fp16 spaces values 2 apart above 2048.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

# rope_type -> the keys its parameters need besides rope_theta.
SUPPORTED_ROPE_TYPES = {
    "default": (),
    "linear": ("factor",),
    "llama3": ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"),
}


def rope_inverse_frequencies(head_dim: int, theta: float, scaling: Mapping | None = None) -> torch.Tensor:
    """The (head_dim / 2,) float32 inverse frequencies ``theta ** (-2i / head_dim)``, then scaled.

    ``scaling`` is a transformers ``rope_parameters`` / ``rope_scaling`` dict (``rope_type`` or ``type``);
    None or ``default`` means no scaling. ``linear`` divides every frequency by ``factor``; ``llama3``
    divides the low frequencies (wavelength above ``original_max_position_embeddings / low_freq_factor``)
    by ``factor``, keeps the high ones (wavelength below ``... / high_freq_factor``) and interpolates
    in between. Other types raise ``ValueError`` naming them.
    """
    if head_dim <= 0 or head_dim % 2:
        raise ValueError(f"rotary embedding: expected a positive even head_dim, got {head_dim}")
    if not theta > 0:
        raise ValueError(f"rotary embedding: expected a positive rope_theta, got {theta}")
    rope_type = rope_type_of(scaling)
    # float32 throughout, as transformers computes them: one ulp of a frequency is an angle error of
    # position * 6e-8 rad, which a checkpoint's own runtime also makes.
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64).to(torch.float32) / head_dim
    inv_freq = 1.0 / (float(theta) ** exponents)
    if rope_type == "linear":
        inv_freq = inv_freq / float(scaling["factor"])  # type: ignore[index]
    elif rope_type == "llama3":
        inv_freq = _llama3_scaled(inv_freq, scaling)  # type: ignore[arg-type]
    return inv_freq


def rope_type_of(scaling: Mapping | None) -> str:
    """The rope type of a scaling dict, checked: unsupported types and missing parameters raise."""
    if scaling is None:
        return "default"
    rope_type = scaling.get("rope_type", scaling.get("type", "default"))
    if rope_type not in SUPPORTED_ROPE_TYPES:
        raise ValueError(
            f"rope scaling: expected rope_type one of {sorted(SUPPORTED_ROPE_TYPES)}, got {rope_type!r}"
        )
    missing = [k for k in SUPPORTED_ROPE_TYPES[rope_type] if scaling.get(k) is None]
    if missing:
        raise ValueError(f"rope scaling {rope_type!r}: expected parameters {missing}, got {dict(scaling)}")
    if float(scaling.get("partial_rotary_factor", 1.0)) != 1.0:
        raise ValueError(
            f"rope scaling: expected partial_rotary_factor 1.0 (the whole head rotates), "
            f"got {scaling['partial_rotary_factor']}"
        )
    return rope_type


def rope_settings(config) -> tuple[float, dict | None]:
    """(rope_theta, scaling dict or None) of a transformers config: transformers 5's ``rope_parameters``
    or 4.x's ``rope_theta`` / ``rope_scaling``. Unsupported rope types raise ``ValueError`` naming them."""
    parameters = getattr(config, "rope_parameters", None)
    if isinstance(parameters, dict) and parameters:
        if "rope_theta" not in parameters and all(isinstance(v, dict) for v in parameters.values()):
            raise ValueError(
                f"rope_parameters: expected one set for every layer, got one per layer type "
                f"{sorted(parameters)}"
            )
        theta = parameters.get("rope_theta", getattr(config, "rope_theta", 10000.0))
        scaling: dict | None = dict(parameters)
    else:
        theta = getattr(config, "rope_theta", 10000.0)
        scaling = dict(getattr(config, "rope_scaling", None) or {}) or None
    if scaling is not None:
        if scaling.get("rope_type", scaling.get("type")) == "llama3":
            scaling.setdefault("original_max_position_embeddings", config.max_position_embeddings)
        if rope_type_of(scaling) == "default":  # refuses unsupported types by name
            scaling = None
    return float(theta), scaling


def _llama3_scaled(inv_freq: torch.Tensor, scaling: Mapping) -> torch.Tensor:
    factor = float(scaling["factor"])
    low, high = float(scaling["low_freq_factor"]), float(scaling["high_freq_factor"])
    context = float(scaling["original_max_position_embeddings"])
    wavelength = 2 * math.pi / inv_freq
    slow = inv_freq / factor
    # 0 at wavelength context / low (fully scaled), 1 at context / high (unscaled).
    smooth = (context / wavelength - low) / (high - low)
    blended = (1 - smooth) * slow + smooth * inv_freq
    out = torch.where(wavelength > context / low, slow, inv_freq)
    return torch.where((wavelength <= context / low) & (wavelength >= context / high), blended, out)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(B, d, 1, S) -> cat(-x2, x1) along channels, for one head of ``d`` channels."""
    half = x.shape[1] // 2
    return torch.cat((-x[:, half:], x[:, :half]), dim=1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on one head ``x`` (B, d, 1, S) with ``cos`` / ``sin`` from ``RotaryEmbeddingANE``."""
    return x * cos + rotate_half(x) * sin


class RotaryEmbeddingANE(nn.Module):
    """cos and sin tables for given positions, shaped (B, head_dim, 1, S) to multiply one head.

    ``positions`` are (B, S) integer rope positions (prefill at 0, decode at p, or any offset; left
    padding shifts them per row). The inverse frequencies are a plain float32 tensor, not a buffer, so
    ``model.half()`` cannot round them.
    """

    def __init__(
        self,
        head_dim: int,
        theta: float = 10000.0,
        scaling: Mapping | None = None,
        max_position_embeddings: int | None = None,
    ):
        super().__init__()
        self.head_dim = head_dim
        self.theta = float(theta)
        self.rope_type = rope_type_of(scaling)
        self.scaling = None if scaling is None else dict(scaling)
        self.max_position_embeddings = max_position_embeddings
        self.inv_freq = rope_inverse_frequencies(head_dim, theta, scaling)

    def forward(self, positions: torch.Tensor, dtype: torch.dtype = torch.float32):
        if not isinstance(positions, torch.Tensor) or positions.dim() != 2 or positions.is_floating_point():
            got = tuple(positions.shape) if isinstance(positions, torch.Tensor) else type(positions).__name__
            raise ValueError(f"RotaryEmbeddingANE: expected integer positions of shape (B, S), got {got}")
        angles = (
            positions.to(torch.float32)[:, None, None, :]
            * self.inv_freq.to(positions.device)[None, :, None, None]
        )  # (B, d/2, 1, S)
        angles = torch.cat((angles, angles), dim=1)  # both halves share one angle per frequency
        return angles.cos().to(dtype), angles.sin().to(dtype)

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, theta={self.theta}, rope_type={self.rope_type!r}"
