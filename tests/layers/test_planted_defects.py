"""The property checks must fail on real non-equivalence: plant known defects and watch them get caught."""

import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

import ane_layers.attention as attention_module
from ane_layers import LayerNormANE, LinearANE
from verification.equivalence.pairs import REGISTRY
from verification.equivalence.runner import check_pair

# Find a counterexample without shrinking it: the point is that one exists.
FIND = settings(
    max_examples=50,
    derandomize=True,
    database=None,
    phases=[Phase.generate],
    report_multiple_bugs=False,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def _property_fails(pair_name: str) -> str:
    pair = REGISTRY[pair_name]

    @FIND
    @given(data=st.data())
    def prop(data):
        check_pair(pair, data.draw(pair.cases()), "fp32")

    with pytest.raises(AssertionError) as failure:
        prop()
    return str(failure.value)


def test_wrong_attention_scale_is_caught(monkeypatch):
    original = attention_module._attend

    def attend_with_wrong_scale(heads_q, heads_k, heads_v, bias):
        return original([q * 1.05 for q in heads_q], heads_k, heads_v, bias)

    monkeypatch.setattr(attention_module, "_attend", attend_with_wrong_scale)
    message = _property_fails("multihead_attention")
    assert "PSNR" in message and "seed" in message


def test_dropped_linear_bias_is_caught(monkeypatch):
    monkeypatch.setattr(LinearANE, "forward", lambda self, x: F.conv2d(x, self.weight))
    assert "PSNR" in _property_fails("linear")


def test_dropped_layer_norm_bias_is_caught(monkeypatch):
    def forward_without_bias(self, x):
        mean = x.mean(dim=1, keepdim=True)
        zero_mean = x - mean
        variance = (zero_mean * zero_mean).mean(dim=1, keepdim=True)
        return zero_mean * (variance + self.eps).rsqrt() * self.weight.view(1, -1, 1, 1)

    monkeypatch.setattr(LayerNormANE, "forward", forward_without_bias)
    assert "PSNR" in _property_fails("layer_norm")


def test_mask_off_by_one_position_is_caught(monkeypatch):
    original = attention_module.attention_mask_to_bias

    def shifted(mask, **kwargs):
        return original(torch.roll(mask, shifts=1, dims=1), **kwargs)

    monkeypatch.setattr(attention_module, "attention_mask_to_bias", shifted)
    assert "PSNR" in _property_fails("encoder_layer")
