"""Parity metrics and a numpy-style assertion that prints every number needed to read a failure.

PSNR follows the published reference implementation (``ane_transformers``' test utilities):
``20 * log10((max|ref| + 1e-5) / (RMSE + 1e-10))`` with RMSE the root of the mean squared error over
all elements. (coremltools' own helper divides the squared error by the wrong element count.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Parity:
    psnr_db: float
    max_abs_error: float
    max_rel_error: float
    cosine_similarity: float
    nan_count: int
    inf_count: int
    ref_nan_count: int
    ref_inf_count: int
    shape: tuple
    ref_max_abs: float

    def describe(self) -> str:
        return (
            f"PSNR {self.psnr_db:.2f} dB, max abs error {self.max_abs_error:.3e}, "
            f"max rel error {self.max_rel_error:.3e}, cosine {self.cosine_similarity:.9f}, "
            f"NaN/Inf in output {self.nan_count}/{self.inf_count}, in reference "
            f"{self.ref_nan_count}/{self.ref_inf_count}, shape {self.shape}, max|ref| {self.ref_max_abs:.3e}"
        )


def as_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype == torch.bfloat16:
            x = x.float()
        x = x.numpy()
    return np.asarray(x)


def psnr(reference, output) -> float:
    """PSNR in dB of ``output`` against ``reference`` (the reference implementation's formula)."""
    ref = as_numpy(reference).astype(np.float64)
    out = as_numpy(output).astype(np.float64)
    if ref.shape != out.shape:
        raise ValueError(f"psnr: shapes differ: reference {ref.shape}, output {out.shape}")
    if ref.size == 0:
        raise ValueError("psnr: empty tensors have no PSNR")
    rmse = np.sqrt(np.mean((ref - out) ** 2))
    return float(20 * np.log10((np.abs(ref).max() + 1e-5) / (rmse + 1e-10)))


def parity(reference, output) -> Parity:
    """All parity metrics of ``output`` against ``reference`` (NaN PSNR if either is non-finite)."""
    ref = as_numpy(reference).astype(np.float64)
    out = as_numpy(output).astype(np.float64)
    if ref.shape != out.shape:
        raise ValueError(f"parity: shapes differ: reference {ref.shape}, output {out.shape}")
    finite = bool(np.isfinite(ref).all() and np.isfinite(out).all())
    if finite and ref.size:
        err = np.abs(ref - out)
        denom = np.linalg.norm(ref) * np.linalg.norm(out)
        cosine = float(np.dot(ref.ravel(), out.ravel()) / denom) if denom > 0 else float(err.max() == 0)
        max_rel = float((err / np.maximum(np.abs(ref), 1e-12)).max())
        metrics = (psnr(ref, out), float(err.max()), max_rel, cosine)
    else:
        metrics = (float("nan"),) * 4
    return Parity(
        *metrics,
        nan_count=int(np.isnan(out).sum()),
        inf_count=int(np.isinf(out).sum()),
        ref_nan_count=int(np.isnan(ref).sum()),
        ref_inf_count=int(np.isinf(ref).sum()),
        shape=tuple(ref.shape),
        ref_max_abs=float(np.nanmax(np.abs(ref))) if ref.size else 0.0,
    )


# Who wants the figures ``assert_parity`` measures (the pytest plugin's ``--ane-report`` does). A hook
# here, installed from outside, keeps the flow one way: this module never imports the application.
_FIGURE_OBSERVERS: list[Callable[[dict], None]] = []


def observe_figures(observer: Callable[[dict], None]) -> Callable[[], None]:
    """Call ``observer(figure)`` after every ``assert_parity``, pass or fail, until the returned function
    is called. ``figure``: {"name", "psnr_db", "min_psnr_db", "max_abs_error", "passed", "seed"}."""
    _FIGURE_OBSERVERS.append(observer)
    return lambda: _FIGURE_OBSERVERS.remove(observer)


def assert_parity(
    reference, output, *, min_psnr_db: float, name: str, seed=None, context: str = ""
) -> Parity:
    """Fail unless ``output`` matches ``reference`` to ``min_psnr_db``; the message names everything."""
    result = parity(reference, output)
    passed = bool(result.psnr_db >= min_psnr_db)  # False on NaN
    for observer in list(_FIGURE_OBSERVERS):
        observer(
            {
                "name": name,
                "psnr_db": float(result.psnr_db),
                "min_psnr_db": float(min_psnr_db),
                "max_abs_error": float(result.max_abs_error),
                "passed": passed,
                "seed": seed if isinstance(seed, (int, str)) or seed is None else str(seed),
            }
        )
    if not passed:
        where = f" (seed {seed})" if seed is not None else ""
        extra = f"\n  {context}" if context else ""
        raise AssertionError(
            f"{name}: parity below threshold{where}\n  required PSNR >= {min_psnr_db} dB\n  "
            f"{result.describe()}{extra}"
        )
    return result
