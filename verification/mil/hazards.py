"""fp16 hazard finder for MIL programs (work in progress)."""

from __future__ import annotations

import numpy as np
import torch


def psnr(reference, output) -> float:
    """20 log10((max|ref| + 1e-5) / (RMSE + 1e-10)), RMSE over all elements, computed in float64."""
    ref = torch.as_tensor(np.asarray(reference) if not isinstance(reference, torch.Tensor) else reference)
    out = torch.as_tensor(np.asarray(output) if not isinstance(output, torch.Tensor) else output)
    ref, out = ref.double(), out.double()
    rmse = torch.sqrt(torch.mean((ref - out) ** 2)).item()
    return float(20 * np.log10((ref.abs().max().item() + 1e-5) / (rmse + 1e-10)))
