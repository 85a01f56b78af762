"""Layout round trips, mask conventions, and checkpoint loading at any nesting depth."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from ane_layers import (
    MASK_SENTINEL,
    LayerNormANE,
    LinearANE,
    attention_mask_to_bias,
    causal_bias,
    from_bc1s,
    key_padding_mask_to_bias,
    to_bc1s,
)
from verification.equivalence import strategies as s


@given(s.batch_sizes(), s.sequence_lengths(64), st.integers(1, 64), s.seeds())
def test_layout_round_trip_is_exact(batch, seq, channels, seed):
    x = s.seeded_normal((batch, seq, channels), seed)
    y = to_bc1s(x)
    assert y.shape == (batch, channels, 1, seq)
    assert torch.equal(from_bc1s(y), x)
    assert torch.equal(y[:, :, 0, :].transpose(1, 2), x)


@given(st.data(), s.mask_dtypes())
def test_mask_dtypes_give_the_same_bias(data, dtype):
    batch, seq = data.draw(s.batch_sizes()), data.draw(s.sequence_lengths(64))
    keep = data.draw(s.keep_masks(batch, seq))
    bias = attention_mask_to_bias(keep.to(dtype))
    assert bias.shape == (batch, seq, 1, 1)
    assert torch.equal(bias[:, :, 0, 0] == 0, keep)
    assert torch.equal(bias[:, :, 0, 0] == MASK_SENTINEL, ~keep)
    assert torch.equal(key_padding_mask_to_bias((~keep).to(dtype)), bias)


def test_causal_bias_lets_each_query_see_itself_and_the_past():
    bias = causal_bias(4)
    assert bias.shape == (1, 4, 1, 4)
    allowed = bias[0, :, 0, :] == 0  # [key, query]
    assert torch.equal(allowed, torch.ones(4, 4, dtype=torch.bool).tril().T)
    assert torch.isfinite(bias).all()


class _Deep(nn.Module):
    def __init__(self, linear_cls, norm_cls):
        super().__init__()
        self.block = nn.ModuleDict({"inner": nn.ModuleList([nn.Sequential(linear_cls(8, 4))])})
        self.head = linear_cls(4, 2)
        self.norm = norm_cls(4)


def test_linear_checkpoints_load_into_nested_conv_layers():
    """torch 2.x hands each child only its own slice of the state dict: loading must still work."""
    baseline = _Deep(nn.Linear, nn.LayerNorm)
    ane = _Deep(LinearANE, LayerNormANE)
    ane.load_state_dict(baseline.state_dict())
    inner_base, inner_ane = baseline.block["inner"][0][0], ane.block["inner"][0][0]
    assert inner_ane.weight.shape == (4, 8, 1, 1)
    assert torch.equal(inner_ane.weight[:, :, 0, 0], inner_base.weight)
    assert torch.equal(ane.head.weight[:, :, 0, 0], baseline.head.weight)


def test_missing_keys_still_reported_when_loading_linear_checkpoints():
    with pytest.raises(RuntimeError, match=r"Missing key\(s\).*head.bias"):
        state = _Deep(nn.Linear, nn.LayerNorm).state_dict()
        del state["head.bias"]
        _Deep(LinearANE, LayerNormANE).load_state_dict(state)


def test_layer_norm_with_zero_weight_loads_without_division():
    baseline = nn.LayerNorm(6)
    with torch.no_grad():
        baseline.weight.zero_()
        baseline.bias.uniform_()
    ane = LayerNormANE.from_layer_norm(baseline)
    x = torch.randn(2, 3, 6)
    out = from_bc1s(ane(to_bc1s(x)))
    assert torch.isfinite(out).all()
    assert torch.allclose(out, baseline(x))


@pytest.mark.parametrize("round_trip", ["linear", "layer_norm", "multihead_attention"])
def test_porting_back_to_baselines_is_exact(round_trip):
    from ane_layers import porting

    torch.manual_seed(0)
    if round_trip == "linear":
        base = nn.Linear(5, 3)
        back = porting.to_linear(porting.from_linear(base))
    elif round_trip == "layer_norm":
        base = nn.LayerNorm(5)
        nn.init.normal_(base.weight)
        back = porting.to_layer_norm(porting.from_layer_norm(base))
    else:
        base = nn.MultiheadAttention(8, 2, batch_first=True)
        back = porting.to_multihead_attention(porting.from_multihead_attention(base))
    for (name, a), (_, b) in zip(base.state_dict().items(), back.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
