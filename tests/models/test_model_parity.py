"""Property tests: every supported family and head, optimized from a random tiny checkpoint, matches
transformers (eager attention) on every output at >= MODEL_FP32_PSNR_DB in fp32."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from model_strategies import (
    HEADS,
    assert_outputs_match,
    describe_config,
    hf_class,
    run_ane,
    run_hf,
    small_configs,
    token_batches,
)

import ane_models

FAMILIES = ("distilbert", "bert", "roberta")


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("family", FAMILIES)
@given(data=st.data(), seed=st.integers(0, 2**16), fp16_safe_eps=st.booleans())
def test_optimized_model_matches_transformers(family, head, data, seed, fp16_safe_eps):
    config = data.draw(small_configs(family, head), label="config")
    batch = data.draw(token_batches(config, choices=head == "ForMultipleChoice"), label="batch")
    torch.manual_seed(seed)
    hf_model = hf_class(family, head)(config).eval()

    ane_model = ane_models.optimize(hf_model, fp16_safe_eps=fp16_safe_eps)

    context = (f"compared: {family} {head} (ANE vs transformers eager, fp32, fully padded rows excluded); "
               f"fp16_safe_eps={fp16_safe_eps}; {describe_config(config)}; {batch.describe()}")
    assert_outputs_match(run_hf(hf_model, batch), run_ane(ane_model, batch), batch,
                         name=f"{family}/{head}", context=context, seed=seed)


@pytest.mark.parametrize("family", FAMILIES)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_fully_padded_rows_stay_finite(family, data, seed):
    """A sequence without any real token gives finite outputs (transformers' finfo.min mask and our
    finite sentinel differ there by design, so only finiteness is required)."""
    config = data.draw(small_configs(family, "ForMaskedLM"), label="config")
    batch = data.draw(token_batches(config), label="batch")
    batch.attention_mask[0] = 0  # the first sequence is all padding
    torch.manual_seed(seed)
    ane_model = ane_models.optimize(hf_class(family, "ForMaskedLM")(config).eval())

    (logits,) = run_ane(ane_model, batch)

    bad = int((~torch.isfinite(logits)).sum())
    assert bad == 0, f"{family}: {bad} non-finite logits with a fully padded row; {describe_config(config)}"
