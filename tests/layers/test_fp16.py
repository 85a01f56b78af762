"""What fp16 does to these layers, asserted rather than skipped.

The Neural Engine computes in fp16. These tests pin down the hazards measured here (torch fp16 on
CPU): eps underflow, silent overflow of squared deviations, and -inf masks. The fp16 parity property
in test_layer_pairs.py covers inputs of magnitude 0.1..10, where fp16 is accurate.
"""

import torch
from torch import nn

from ane_layers import MASK_SENTINEL, LayerNormANE, MultiHeadAttentionANE, from_bc1s, porting, to_bc1s
from verification.equivalence.pairs import randomize_parameters
from verification.metrics import parity


def _ln_pair(eps: float, clip=None):
    baseline = randomize_parameters(nn.LayerNorm(64, eps=eps), seed=3)
    ane = porting.from_layer_norm(baseline)
    ane.clip = clip
    return baseline, ane


def test_eps_1e12_underflows_to_zero_in_fp16_and_constant_rows_turn_nan():
    assert torch.tensor(1e-12, dtype=torch.float16).item() == 0.0
    assert torch.tensor(1e-7, dtype=torch.float16).item() > 0.0  # the published ANE eps survives (subnormal)
    constant_rows = torch.full((1, 8, 1, 4), 3.0, dtype=torch.float16)
    out_underflowing = LayerNormANE(8, eps=1e-12).half()(constant_rows)
    assert torch.isnan(out_underflowing).all(), "eps 1e-12 should vanish in fp16: rsqrt(0) * 0 = NaN"
    out_safe = LayerNormANE(8, eps=1e-7).half()(constant_rows)
    assert torch.isfinite(out_safe).all()


def test_tiny_variance_underflows_in_fp16_unless_eps_is_representable():
    x = torch.randn(2, 16, 64, generator=torch.Generator().manual_seed(0)) * 1e-4  # variance 1e-8
    baseline, ane = _ln_pair(eps=1e-12)
    out = from_bc1s(ane.half()(to_bc1s(x).half()))
    assert not torch.isfinite(out).all(), "squares of 1e-4 underflow in fp16: variance 0, eps 0"
    baseline, ane = _ln_pair(eps=1e-5)
    result = parity(baseline(x), from_bc1s(ane.half()(to_bc1s(x).half())).float())
    assert result.psnr_db > 60, result.describe()


def test_squared_deviation_overflow_is_silent_in_fp16():
    """|x - mean| beyond 256 squares past 65504: the variance is Inf, rsqrt gives 0, out collapses to bias."""
    x = torch.randn(2, 16, 64, generator=torch.Generator().manual_seed(0)) * 100
    baseline, ane = _ln_pair(eps=1e-5)
    out = from_bc1s(ane.half()(to_bc1s(x).half())).float()
    assert torch.isfinite(out).all(), "the overflow is silent: the output stays finite"
    assert parity(baseline(x), out).psnr_db < 25
    bias = ane.bias.detach().float().view(1, 1, -1)
    collapsed = (out - bias).abs().amax(dim=-1) < 1e-2  # positions whose output is the bias alone
    assert collapsed.any(), "positions with an overflowing variance should output the bias alone"
    assert not ((baseline(x) - bias).abs().amax(dim=-1) < 1e-2).any()


def test_clip_bounds_inputs_out_of_place_and_equals_clamped_baseline():
    x = torch.randn(2, 16, 64, generator=torch.Generator().manual_seed(0)) * 300
    before = x.clone()
    baseline, ane = _ln_pair(eps=1e-5, clip=100.0)
    out = from_bc1s(ane(to_bc1s(x)))
    assert torch.equal(x, before), "clip must never mutate the caller's tensor"
    result = parity(baseline(x.clamp(-100.0, 100.0)), out)
    assert result.psnr_db > 100, result.describe()


def test_finfo_min_masks_become_inf_in_fp16_but_the_sentinel_stays_finite():
    finfo_min_in_fp16 = torch.tensor(torch.finfo(torch.float32).min).half()
    assert torch.isinf(finfo_min_in_fp16)
    assert torch.isnan(finfo_min_in_fp16 * 0)
    assert torch.isfinite(torch.tensor(MASK_SENTINEL).half())


def test_fp16_attention_with_fully_masked_rows_is_finite():
    attention = MultiHeadAttentionANE(32, 4).eval().half()
    x = torch.randn(3, 32, 1, 10).half()
    keep = torch.ones(3, 10, dtype=torch.bool)
    keep[1] = False  # a sequence that is all padding
    keep[2, 3:] = False
    with torch.no_grad():
        out = attention(x, attention_mask=keep, causal=True)
    assert torch.isfinite(out).all()


def _identity_attention() -> MultiHeadAttentionANE:
    """One head of width 2 whose projections are the identity: scores are q . k / sqrt(2)."""
    attention = MultiHeadAttentionANE(2, 1)
    with torch.no_grad():
        for projection in (attention.q_proj, attention.k_proj, attention.v_proj, attention.out_proj):
            projection.weight.copy_(torch.eye(2)[:, :, None, None])
            projection.bias.zero_()
    return attention.eval()


def _padded_key_weight(score_gap: float) -> float:
    """Attention weight a padded key gets when its score exceeds the real key's by ``score_gap``.

    Token 0 = (1, 0) is real, token 1 = (b, 1) is padding: the query of token 0 scores 1/sqrt(2) on
    itself and b/sqrt(2) on the padded key, and channel 1 of its output is the padded key's weight.
    """
    b = 1.0 + score_gap * 2**0.5
    x = torch.tensor([[[[1.0, b]], [[0.0, 1.0]]]])  # (1, 2, 1, 2)
    attention = _identity_attention()
    with torch.no_grad():
        out = attention(x, attention_mask=torch.tensor([[True, False]]))
    return out[0, 1, 0, 0].item()


def test_the_additive_sentinel_holds_while_scores_spread_less_than_1e4():
    """MASK_SENTINEL is additive (an `add` op, as on the ANE), so it bounds the score gap it can hide:
    up to |sentinel| - 104 (fp32's exp underflow) a padded key gets no weight at all; beyond |sentinel| it
    takes over. Real attention logits stay in the tens; inputs of magnitude 1e3 reach 1e6."""
    assert _padded_key_weight(0.0) == 0.0
    assert _padded_key_weight(-MASK_SENTINEL - 110) == 0.0  # exp(-110) underflows in fp32
    assert _padded_key_weight(-MASK_SENTINEL + 50) > 0.99
