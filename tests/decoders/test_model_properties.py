"""Every decoder family against transformers with its own cache (DynamicCache), fp32, bar 90 dB:
prefill logits, each of K decode steps, prefill of N == N single steps, greedy generation."""

from __future__ import annotations

import pytest
import torch
from decoder_strategies import (
    FAMILIES,
    decoder_specs,
    hf_base_model,
    hf_causal_lm,
    hf_dynamic_cache,
    prompts,
    rotary_positions,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import ane_models
from verification.metrics import assert_parity

BAR_DB = 90.0
GENERATED_TOKENS = 32
# Each property runs once per family: a third of the profile's examples each (50 in all under ci).
PER_FAMILY = settings(max_examples=max(5, settings.default.max_examples // len(FAMILIES)))


def _cache(model):
    return hf_dynamic_cache(model.config)


@pytest.mark.parametrize("family", FAMILIES)
@PER_FAMILY
@given(data=st.data())
def test_prefill_and_every_decode_step_match_transformers(family, data):
    spec = data.draw(decoder_specs(family), label="spec")
    steps = data.draw(st.integers(1, 6), label="K decode steps")
    prompt = data.draw(prompts(spec.vocab, max_length=min(24, spec.max_positions - steps)), label="prompt")
    hf = hf_causal_lm(spec)
    batch, length = prompt.ids.shape
    ane = ane_models.optimize(
        hf,
        cache_capacity=length + steps + data.draw(st.integers(0, 8)),
        prefill_length=length,
        batch_size=batch,
    )
    context = f"{spec.describe()}; {prompt.describe()}; K={steps}"
    mask, positions = prompt.mask, rotary_positions(prompt.mask)
    cache = _cache(hf)
    with torch.no_grad():
        reference = hf(
            prompt.ids, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=True
        ).logits
        ours = ane.prefill(prompt.ids, 0, positions, mask)
        real = mask.bool()  # a padded query has no key to attend: its logits mean nothing on either side
        assert_parity(
            reference[real],
            ours[real],
            min_psnr_db=BAR_DB,
            name=f"{family} prefill logits",
            seed=spec.seed,
            context=context,
        )
        tokens = reference[:, -1].argmax(-1, keepdim=True)
        for step in range(steps):
            mask = torch.cat([mask, torch.ones_like(tokens)], dim=1)
            positions = positions[:, -1:] + 1
            reference = hf(
                tokens, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=True
            ).logits[:, -1]
            ours = ane.decode_step(tokens, length + step, positions, mask)
            assert_parity(
                reference,
                ours,
                min_psnr_db=BAR_DB,
                name=f"{family} decode step {step + 1}/{steps}",
                seed=spec.seed,
                context=context,
            )
            tokens = reference.argmax(-1, keepdim=True)


@pytest.mark.parametrize("family", FAMILIES)
@PER_FAMILY
@given(data=st.data())
def test_prefill_of_n_tokens_equals_n_decode_steps(family, data):
    spec = data.draw(decoder_specs(family), label="spec")
    prompt = data.draw(
        prompts(spec.vocab, max_length=min(16, spec.max_positions), padded=False), label="prompt"
    )
    start = data.draw(st.integers(0, spec.max_positions - prompt.ids.shape[1]), label="first position")
    batch, length = prompt.ids.shape
    ane = ane_models.optimize(
        hf_causal_lm(spec), cache_capacity=start + length, prefill_length=length, batch_size=batch
    )
    context = f"{spec.describe()}; {prompt.describe()}; from slot {start}"
    with torch.no_grad():
        whole = ane.prefill(prompt.ids, start)
        k_after_prefill = ane.model.kv_cache.k_cache[:, :, start:].clone()
        ane.reset_cache()
        single = torch.stack(
            [ane.decode_step(prompt.ids[:, i : i + 1], start + i) for i in range(length)], dim=1
        )
    assert_parity(
        whole,
        single,
        min_psnr_db=BAR_DB,
        name=f"{family} prefill vs single steps (logits)",
        seed=spec.seed,
        context=context,
    )
    assert_parity(
        k_after_prefill,
        ane.model.kv_cache.k_cache[:, :, start:],
        min_psnr_db=BAR_DB,
        name=f"{family} prefill vs single steps (cached keys)",
        seed=spec.seed,
        context=context,
    )


@pytest.mark.parametrize("family", FAMILIES)
@PER_FAMILY
@given(data=st.data())
def test_greedy_generation_matches_transformers_generate(family, data):
    spec = data.draw(decoder_specs(family, max_layers=2, min_positions=64), label="spec")
    prompt = data.draw(
        prompts(spec.vocab, max_length=min(16, spec.max_positions - GENERATED_TOKENS)), label="prompt"
    )
    hf = hf_causal_lm(spec)
    batch, length = prompt.ids.shape
    ane = ane_models.optimize(hf, cache_capacity=length + GENERATED_TOKENS, prefill_length=length)
    with torch.no_grad():
        expected = hf.generate(
            prompt.ids,
            attention_mask=prompt.mask,
            max_new_tokens=GENERATED_TOKENS,
            do_sample=False,
            eos_token_id=None,
            pad_token_id=0,
        )
    got = ane_models.generate(ane, prompt.ids, GENERATED_TOKENS, prompt.mask)
    assert got.dtype == torch.int64 and got.shape == expected.shape == (batch, length + GENERATED_TOKENS), (
        f"shapes: ours {tuple(got.shape)} {got.dtype}, transformers {tuple(expected.shape)}"
    )
    differ = (got != expected).any(dim=0).nonzero().flatten()
    assert differ.numel() == 0, (
        f"{family} greedy tokens differ from transformers' generate from position {int(differ[0])} "
        f"(of {length} + {GENERATED_TOKENS}): ours {got[:, differ[0] :].tolist()}, "
        f"transformers {expected[:, differ[0] :].tolist()}; {spec.describe()}; {prompt.describe()}"
    )


@pytest.mark.parametrize("family", FAMILIES)
@PER_FAMILY
@given(data=st.data())
def test_base_model_hidden_states_match_transformers(family, data):
    spec = data.draw(decoder_specs(family), label="spec")
    prompt = data.draw(
        prompts(spec.vocab, max_length=min(24, spec.max_positions), padded=False), label="prompt"
    )
    hf = hf_base_model(spec)
    batch, length = prompt.ids.shape
    ane = ane_models.optimize(hf, cache_capacity=length, prefill_length=length, batch_size=batch)
    with torch.no_grad():
        reference = hf(prompt.ids).last_hidden_state
        (ours,) = ane(prompt.ids, 0)
    assert_parity(
        reference,
        ane_models.hidden_states_to_bsc(ours),
        min_psnr_db=BAR_DB,
        name=f"{family} base model hidden states",
        seed=spec.seed,
        context=f"{spec.describe()}; {prompt.describe()}",
    )
