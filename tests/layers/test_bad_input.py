"""Bad input raises ValueError or TypeError naming the expected and the received shape or dtype."""

import pytest
import torch

from ane_layers import (
    FeedForwardANE,
    LayerNormANE,
    LinearANE,
    MultiHeadAttentionANE,
    TransformerEncoderLayerANE,
    attention_mask_to_bias,
    from_bc1s,
    key_padding_mask_to_bias,
    porting,
    to_bc1s,
)


def test_wrong_rank_names_expected_layout():
    with pytest.raises(ValueError, match=r"expected shape \(B, C, 1, S\).*got \(2, 7, 16\)"):
        LinearANE(16, 8)(torch.randn(2, 7, 16))


def test_wrong_channel_count_names_both_counts():
    with pytest.raises(ValueError, match=r"expected 16 channels.*got shape \(2, 12, 1, 7\)"):
        LayerNormANE(16)(torch.randn(2, 12, 1, 7))


def test_integer_activations_are_a_type_error():
    with pytest.raises(TypeError, match=r"expected a floating-point tensor, got dtype torch.int64"):
        FeedForwardANE(8, 16)(torch.ones(1, 8, 1, 3, dtype=torch.long))


def test_non_finite_inputs_are_counted():
    x = torch.randn(1, 8, 1, 5)
    x[0, 1, 0, 2] = float("nan")
    x[0, 3, 0, 4] = float("inf")
    with pytest.raises(ValueError, match=r"expected finite values, got 1 NaN and 1 Inf of 40 elements"):
        LayerNormANE(8)(x)


def test_hidden_size_not_divisible_by_heads():
    with pytest.raises(ValueError, match=r"embed_dim=30, num_heads=4"):
        MultiHeadAttentionANE(30, 4)


@pytest.mark.parametrize("shape", [(2, 6), (2, 5, 1), (1, 7)])
def test_key_padding_mask_of_wrong_shape_is_rejected_not_broadcast(shape):
    attention = MultiHeadAttentionANE(16, 2)
    with pytest.raises(ValueError, match=r"expected (shape|a \(2, 7\) key-padding mask).*got"):
        attention(torch.randn(2, 16, 1, 7), attention_mask=torch.ones(shape, dtype=torch.bool))


def test_additive_bias_wrong_in_key_axis_is_rejected():
    attention = MultiHeadAttentionANE(16, 2)
    with pytest.raises(ValueError, match=r"expected shape \(2 or 1, 7, 1, 7 or 1\).*got \(2, 1, 1, 7\)"):
        attention(torch.randn(2, 16, 1, 7), attention_mask=torch.zeros(2, 1, 1, 7))


def test_mask_values_other_than_zero_and_one_are_rejected():
    with pytest.raises(ValueError, match=r"expected only 0 and 1.*got 1 other values \(e.g. 2"):
        attention_mask_to_bias(torch.tensor([[1, 1, 2]]))
    with pytest.raises(ValueError, match=r"expected only 0 and 1"):
        key_padding_mask_to_bias(torch.tensor([[0.0, -10000.0]]))


def test_cross_attention_batch_mismatch():
    attention = MultiHeadAttentionANE(16, 2)
    with pytest.raises(ValueError, match=r"query batch 2 != key_value batch 3"):
        attention(torch.randn(2, 16, 1, 4), torch.randn(3, 16, 1, 5))


def test_cross_attention_key_channels_checked():
    attention = MultiHeadAttentionANE(16, 2, kdim=24, vdim=24)
    with pytest.raises(ValueError, match=r"expected 24 channels"):
        attention(torch.randn(2, 16, 1, 4), torch.randn(2, 16, 1, 5))


def test_unknown_activation_lists_choices():
    with pytest.raises(ValueError, match=r"expected one of \['gelu', 'gelu_tanh', 'relu'\], got 'swish'"):
        TransformerEncoderLayerANE(16, 2, 32, activation="swish")


def test_layout_helpers_check_rank():
    with pytest.raises(ValueError, match=r"expected a \(B, S, C\) tensor, got shape \(2, 3\)"):
        to_bc1s(torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"expected a \(B, C, 1, S\) tensor, got shape \(2, 3, 4, 5\)"):
        from_bc1s(torch.randn(2, 3, 4, 5))


def test_non_tensor_input_is_a_type_error():
    with pytest.raises(TypeError, match=r"expected a torch.Tensor of shape \(B, C, 1, S\), got list"):
        LinearANE(2, 2)([[1.0, 2.0]])


@pytest.mark.parametrize(
    ("layer", "x", "expected", "received"),
    [
        (LinearANE(8, 4), torch.randn(1, 8, 1, 3, dtype=torch.float64), "torch.float32", "torch.float64"),
        (LayerNormANE(8), torch.randn(1, 8, 1, 3).half(), "torch.float32", "torch.float16"),
        (MultiHeadAttentionANE(8, 2).half(), torch.randn(1, 8, 1, 3), "torch.float16", "torch.float32"),
        (
            FeedForwardANE(8, 16),
            torch.randn(1, 8, 1, 3, dtype=torch.float64),
            "torch.float32",
            "torch.float64",
        ),
    ],
)
def test_activation_dtype_other_than_the_layers_names_both(layer, x, expected, received):
    with pytest.raises(
        TypeError, match=rf"expected dtype {expected} \(the layer's parameters\), got {received}"
    ):
        layer(x)


@pytest.mark.parametrize("bad", [float("-inf"), float("nan"), torch.finfo(torch.float32).min])
def test_additive_bias_must_be_finite_and_fit_fp16(bad):
    attention = MultiHeadAttentionANE(16, 2)
    bias = torch.zeros(2, 7, 1, 7)
    bias[1, 6] = bad
    with pytest.raises(
        ValueError, match=r"expected finite values of at least -65504.0 .* got 7 values outside"
    ):
        attention(torch.randn(2, 16, 1, 7), attention_mask=bias)


def test_cross_attention_key_and_value_widths_must_match():
    with pytest.raises(ValueError, match=r"expected kdim == vdim .* got kdim=8, vdim=12"):
        MultiHeadAttentionANE(16, 2, kdim=8, vdim=12)
    baseline = torch.nn.MultiheadAttention(16, 2, kdim=8, vdim=12, batch_first=True)
    with pytest.raises(ValueError, match=r"got kdim=8, vdim=12"):
        porting.from_multihead_attention(baseline)


def test_unsupported_multihead_attention_options_are_named_with_their_values():
    baseline = torch.nn.MultiheadAttention(16, 2, add_bias_kv=True, batch_first=True)
    with pytest.raises(
        ValueError, match=r"expected add_bias_kv=False .* got add_bias_kv=True, add_zero_attn=False"
    ):
        porting.from_multihead_attention(baseline)
    layer = torch.nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)
    layer.self_attn = baseline
    with pytest.raises(ValueError, match=r"nn.MultiheadAttention at 'self_attn': expected add_bias_kv=False"):
        porting.from_encoder_layer(layer)
