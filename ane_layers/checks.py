"""Input checks shared by the ANE layers: every message names what was expected and what came."""

from __future__ import annotations

import torch


def is_tracing() -> bool:
    """True while torch.jit.trace, torch.export or torch.compile records the graph.

    Data-dependent checks (finiteness, mask values) are skipped then: they would bake a Python
    bool into the traced program. Shape checks still run, since shapes are static when tracing.
    """
    if torch.jit.is_tracing():
        return True
    compiler = getattr(torch, "compiler", None)
    if compiler is None:
        return False
    is_exporting = getattr(compiler, "is_exporting", None)
    return bool(compiler.is_compiling() or (is_exporting is not None and is_exporting()))


def check_bc1s(
    x: torch.Tensor, name: str, *, channels: int | None = None, dtype: torch.dtype | None = None
) -> None:
    """Raise unless ``x`` is a floating (B, C, 1, S) tensor (with C == ``channels`` and the layer's
    parameter ``dtype`` when given)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor of shape (B, C, 1, S), got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(
            f"{name}: expected dtype {dtype} (the layer's parameters), got {x.dtype}; convert the input "
            f"or the layer (.to(dtype)) so that both match"
        )
    if x.dim() != 4 or x.shape[2] != 1:
        raise ValueError(
            f"{name}: expected shape (B, C, 1, S) (rank 4 with a singleton third axis), got {tuple(x.shape)}"
        )
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name}: expected {channels} channels in (B, C, 1, S), got shape {tuple(x.shape)}")
    check_finite(x, name)


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raise if ``x`` holds NaN or Inf (skipped while tracing: values are not known then)."""
    if is_tracing():
        return
    if not bool(torch.isfinite(x).all()):
        n_nan = int(torch.isnan(x).sum())
        n_inf = int(torch.isinf(x).sum())
        raise ValueError(
            f"{name}: expected finite values, got {n_nan} NaN and {n_inf} Inf of {x.numel()} "
            f"elements (shape {tuple(x.shape)})"
        )


def check_divisible(embed_dim: int, num_heads: int) -> None:
    if num_heads <= 0 or embed_dim <= 0 or embed_dim % num_heads != 0:
        raise ValueError(
            f"embed_dim must be a positive multiple of num_heads: got embed_dim={embed_dim}, "
            f"num_heads={num_heads}"
        )
