"""Conversion of the layers: LayerNormANE becomes one layer_norm op; attention keeps the ANE form."""

import pytest
import torch

from ane_layers import LayerNormANE, TransformerEncoderLayerANE
from verification.coreml import convert

pytestmark = pytest.mark.coreml


def _op_types(mlmodel) -> list[str]:
    return [op.op_type for op in mlmodel._mil_program.functions["main"].operations if op.op_type != "const"]


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("affine", ["random", "identity", "none"])
def test_layer_norm_converts_to_one_fused_layer_norm(precision, affine):
    """Identity affines matter: coremltools drops mul-by-1 and add-0 before any fusion runs."""
    norm = LayerNormANE(32, eps=1e-5, elementwise_affine=affine != "none").eval()
    if affine == "random":
        with torch.no_grad():
            norm.weight.normal_()
            norm.bias.normal_()
    ops = [
        t for t in _op_types(convert(norm, (torch.randn(1, 32, 1, 8),), precision=precision)) if t != "cast"
    ]
    assert ops == ["layer_norm"], ops


def test_fused_gamma_and_beta_are_the_checkpoint_weights():
    norm = LayerNormANE(16, eps=1e-5).eval()
    with torch.no_grad():
        norm.weight.normal_()
        norm.weight[3] = 0.0  # a zero scale must survive: no division anywhere
        norm.bias.normal_()
    program = convert(norm, (torch.randn(1, 16, 1, 4),), precision="fp32")._mil_program
    (fused,) = [op for op in program.functions["main"].operations if op.op_type == "layer_norm"]
    assert list(fused.axes.val) == [1]
    assert torch.equal(torch.from_numpy(fused.gamma.val), norm.weight.detach())
    assert torch.equal(torch.from_numpy(fused.beta.val), norm.bias.detach())


def test_encoder_layer_converts_with_fused_norms_and_one_transpose_per_attention():
    layer = TransformerEncoderLayerANE(64, 4, 128, activation="gelu").eval()
    x = torch.randn(1, 64, 1, 16)
    keep = torch.ones(1, 16, dtype=torch.int32)
    ops = _op_types(convert(layer, (x, keep), precision="fp16"))
    assert ops.count("layer_norm") == 2, ops
    assert ops.count("transpose") <= 1, ops
    assert ops.count("reshape") == 0, ops
    assert ops.count("einsum") == 2 * 4, ops
    assert ops.count("conv") == 6, ops
