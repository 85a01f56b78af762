"""RMSNormANE where the parity property (inputs 0.1..10, Llama form) cannot look: Gemma's offset form,
weight (1 + w), and rows small enough that eps matters, where the row-max pre-scaling must rescale eps
(coremltools #2821 is that defect in its own fused form)."""

import pytest
import torch
from transformers.models.gemma.modeling_gemma import GemmaRMSNorm
from transformers.models.llama.modeling_llama import LlamaRMSNorm

from ane_layers import RMSNormANE, from_bc1s, to_bc1s
from verification.metrics import parity

CHANNELS = 32


def _hidden(seed: int, scales) -> torch.Tensor:
    """(1, len(scales), C): row i drawn at magnitude scales[i]."""
    x = torch.randn(1, len(scales), CHANNELS, generator=torch.Generator().manual_seed(seed))
    return x * torch.tensor(scales).view(1, -1, 1)


def test_gemma_offset_form_scales_by_one_plus_weight():
    w = torch.randn(CHANNELS, generator=torch.Generator().manual_seed(5)) * 0.5
    gemma = GemmaRMSNorm(CHANNELS, eps=1e-6)
    ane = RMSNormANE(CHANNELS, eps=1e-6, weight_offset=1.0)
    with torch.no_grad():
        gemma.weight.copy_(w)
        ane.weight.copy_(w)
    x = _hidden(6, [0.3, 1.0, 4.0, 20.0])
    expected = gemma(x)
    formula = x * (x.pow(2).mean(-1, keepdim=True) + 1e-6).rsqrt() * (1.0 + w)
    assert torch.allclose(expected, formula, atol=1e-6), "GemmaRMSNorm is (1 + w) * x / rms(x)"
    result = parity(expected, from_bc1s(ane(to_bc1s(x))))
    assert result.psnr_db > 100, f"weight_offset 1, |w| ~ 0.5: {result.describe()}"


@pytest.mark.parametrize("eps", [1e-6, 1e-5])
def test_eps_is_rescaled_after_the_row_max_prescaling(eps):
    """Rows whose mean square is near eps (1e-4..1e-2 magnitudes), beside ordinary and large rows, against
    LlamaRMSNorm in fp32: eps enters as eps / max|x|**2 after the division by the row's peak."""
    scales = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 1.0, 300.0]
    baseline = LlamaRMSNorm(CHANNELS, eps=eps)
    ane = RMSNormANE(CHANNELS, eps=eps)
    w = torch.randn(CHANNELS, generator=torch.Generator().manual_seed(7)) * 0.2 + 1.0
    with torch.no_grad():
        baseline.weight.copy_(w)
        ane.weight.copy_(w)
    x = _hidden(8, scales)
    expected, got = baseline(x), from_bc1s(ane(to_bc1s(x)))
    for row, scale in enumerate(scales):
        ms = float(x[0, row].pow(2).mean())
        result = parity(expected[0, row], got[0, row])
        assert result.psnr_db > 100, (
            f"eps {eps}, row {row} (magnitude {scale:g}, mean square {ms:.3g}): {result.describe()}"
        )
