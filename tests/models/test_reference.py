"""The standalone ANE Transformer against ``torch.nn.Transformer`` with the same weights."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from model_strategies import randomize_parameters
from torch import nn

from ane_layers import from_bc1s, to_bc1s
from ane_models import TrainingModeWarning
from ane_models.reference import TransformerANE, from_torch_transformer
from verification.metrics import assert_parity
from verification.thresholds import MODEL_FP32_PSNR_DB


@st.composite
def small_transformer_options(draw):
    heads = draw(st.integers(1, 4))
    return dict(d_model=heads * draw(st.integers(4, 16)), nhead=heads,
                num_encoder_layers=draw(st.integers(1, 3)), num_decoder_layers=draw(st.integers(1, 3)),
                dim_feedforward=draw(st.integers(4, 64)), activation=draw(st.sampled_from(["relu", "gelu"])),
                norm_first=draw(st.booleans()), batch_first=draw(st.booleans()))


def right_padded_masks(batch: int, length: int):
    """(B, S) key-padding masks in torch's convention (True = padding), each row with >= 1 real token
    first (with a causal mask, a query whose visible keys are all padding is NaN in torch)."""
    lengths = st.lists(st.integers(1, length), min_size=batch, max_size=batch)
    return lengths.map(lambda real: torch.arange(length)[None, :] >= torch.tensor(real)[:, None])


def seeded_transformer(options: dict, seed: int) -> nn.Transformer:
    torch.manual_seed(seed)
    model = nn.Transformer(dropout=0.1, **options).eval()
    # LayerNorms start at (1, 0) and the attention and output biases at 0: draw them all away from it
    return randomize_parameters(model, seed, scale=0.3)


def torch_layout(x: torch.Tensor, batch_first: bool) -> torch.Tensor:
    return x if batch_first else x.transpose(0, 1)


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True:UserWarning")
@given(options=small_transformer_options(), seed=st.integers(0, 2**16), data=st.data())
def test_reference_transformer_matches_torch(options, seed, data):
    baseline = seeded_transformer(options, seed)
    ane = from_torch_transformer(baseline)
    batch = data.draw(st.integers(1, 3), label="batch")
    src_len = data.draw(st.integers(1, 16), label="src_len")
    tgt_len = data.draw(st.integers(1, 16), label="tgt_len")
    src_pad = data.draw(st.one_of(st.none(), right_padded_masks(batch, src_len)), label="src_pad")
    tgt_pad = data.draw(st.one_of(st.none(), right_padded_masks(batch, tgt_len)), label="tgt_pad")
    memory_pad = src_pad if data.draw(st.booleans(), label="mask memory") else None
    src = torch.randn(batch, src_len, options["d_model"])
    tgt = torch.randn(batch, tgt_len, options["d_model"])

    # Gradients stay on for the baseline: torch's inference fast path (nested tensors, fused kernels)
    # would zero padded positions and round differently; the plain path is the math to match.
    bf = options["batch_first"]
    causal = torch.ones(tgt_len, tgt_len, dtype=torch.bool).triu(1)  # True = not allowed, like the padding
    memory_ref = baseline.encoder(torch_layout(src, bf), src_key_padding_mask=src_pad)
    out_ref = baseline.decoder(torch_layout(tgt, bf), memory_ref, tgt_mask=causal, tgt_is_causal=True,
                               tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=memory_pad)
    full_ref = baseline(torch_layout(src, bf), torch_layout(tgt, bf), tgt_mask=causal, tgt_is_causal=True,
                        src_key_padding_mask=src_pad, tgt_key_padding_mask=tgt_pad,
                        memory_key_padding_mask=memory_pad)
    with torch.no_grad():
        memory = ane.encode(to_bc1s(src), src_pad)
        out = ane.decode(to_bc1s(tgt), memory, tgt_pad, memory_pad)
        full = ane(to_bc1s(src), to_bc1s(tgt), src_pad, tgt_pad, memory_pad)

    context = (f"compared: TransformerANE vs nn.Transformer (fp32); options {options}; batch {batch}, "
               f"src {src_len} (padding {src_pad is not None}), tgt {tgt_len} "
               f"(padding {tgt_pad is not None}), memory mask {memory_pad is not None}")
    for name, ref, got in (("encoder output", memory_ref, memory), ("decoder output", out_ref, out),
                           ("forward", full_ref, full)):
        assert_parity(torch_layout(ref.detach(), bf), from_bc1s(got), min_psnr_db=MODEL_FP32_PSNR_DB,
                      name=f"reference Transformer {name}", seed=seed, context=context)


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True:UserWarning")
def test_reference_transformer_port_warns_on_training_mode_and_returns_eval():
    baseline = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                              dim_feedforward=16)
    assert baseline.training
    with pytest.warns(TrainingModeWarning, match="training mode"):
        ane = from_torch_transformer(baseline)
    assert not ane.training and baseline.training


def test_reference_transformer_rejects_masks_of_the_wrong_shape():
    ane = TransformerANE(8, 2, 1, 1, 16).eval()
    src, tgt = torch.randn(2, 8, 1, 5), torch.randn(2, 8, 1, 3)
    with pytest.raises(ValueError, match=r"src_key_padding_mask: expected shape .* = \(2, 5\), got \(2, 4\)"):
        ane(src, tgt, torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"tgt_key_padding_mask: expected shape .* = \(2, 3\), got \(1, 3\)"):
        ane(src, tgt, None, torch.zeros(1, 3, dtype=torch.bool))


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True:UserWarning")
def test_reference_transformer_without_masks_is_causal_in_the_decoder():
    """Changing a later target token must not change earlier decoder outputs (causal default)."""
    torch.manual_seed(0)
    ane = from_torch_transformer(seeded_transformer(dict(d_model=8, nhead=2, num_encoder_layers=1,
                                                         num_decoder_layers=2, dim_feedforward=16), 0))
    src, tgt = torch.randn(1, 8, 1, 4), torch.randn(1, 8, 1, 6)
    changed = tgt.clone()
    changed[..., 5] += 1.0
    with torch.no_grad():
        a, b = ane(src, tgt), ane(src, changed)
    assert torch.equal(a[..., :5], b[..., :5])
    assert not torch.equal(a[..., 5], b[..., 5])
