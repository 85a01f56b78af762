"""Converted decoders (a tiny seeded Llama: 2 layers, grouped-query attention, tied head) in both cache
forms, run through the MIL executor by ``ane_models.generate``: tokens against transformers, logits step
by step, the cache forms against each other, prefill against sequential decoding, fp16 hazards a step at a
time, and the bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

import ane_models
from verification.coreml import PackageError, save
from verification.decoders.checks import (
    compare_steps,
    prefill_vs_sequential,
    reference_logits,
    token_agreement,
)
from verification.decoders.conversion import convert_decoder
from verification.decoders.program_lm import ProgramCausalLM
from verification.mil.hazards import find_hazards

CAPACITY, PREFILL, NEW_TOKENS = 40, 8, 24


def tiny_llama(seed: int = 0, max_positions: int = 64):
    """A 2-layer seeded Llama (6 heads over 2 kv heads), norm scales drawn away from 1."""
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=96,
        hidden_size=48,
        intermediate_size=80,
        num_hidden_layers=2,
        num_attention_heads=6,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        rope_theta=5000.0,
        rms_norm_eps=1e-5,
        attn_implementation="eager",
    )
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():  # norm scales away from 1, so a dropped or misplaced scale shows
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.3 * torch.randn_like(p))
    return model


@pytest.fixture(scope="module")
def decoders(tmp_path_factory):
    root = tmp_path_factory.mktemp("decoders")
    hf = tiny_llama()
    lm = ane_models.optimize(hf, cache_capacity=CAPACITY, prefill_length=PREFILL)
    packages = {}
    for cache, precision in (("state", "fp32"), ("state", "fp16"), ("io", "fp32")):
        packages[cache, precision] = convert_decoder(
            lm, root / f"{cache}_{precision}.mlpackage", cache=cache, precision=precision
        ).path
    prompt = torch.randint(0, 96, (1, 6), generator=torch.Generator().manual_seed(1))
    tokens, logits = reference_logits(hf, prompt, NEW_TOKENS)
    return hf, lm, packages, prompt, tokens, logits


def program(decoders, cache, precision):
    _, lm, packages, *_ = decoders
    return ProgramCausalLM(packages[cache, precision], lm.decoder_config, backend="mil")


@pytest.mark.parametrize("cache", ["state", "io"])
def test_fp32_programs_generate_transformers_tokens(decoders, cache):
    _, _, _, prompt, tokens, _ = decoders
    result = token_agreement(program(decoders, cache, "fp32"), prompt, tokens)
    assert result.first_diverging_step is None, (
        f"{cache} fp32 program diverges from transformers at new token {result.first_diverging_step}: "
        f"{result.tokens} vs {tokens[0, prompt.shape[1] :].tolist()}"
    )


@pytest.mark.parametrize(
    "cache, precision, floor", [("state", "fp32", 70), ("io", "fp32", 100), ("state", "fp16", 40)]
)
def test_every_step_s_logits_match_transformers(decoders, cache, precision, floor):
    """Teacher-forced on transformers' tokens. The state form holds its cache in fp16 even in an fp32
    program (Core ML has no other state type), hence its lower floor than the io form's."""
    _, _, _, prompt, tokens, logits = decoders
    figures = compare_steps(program(decoders, cache, precision), tokens, logits, prompt.shape[1])
    print(
        f"{cache} {precision}: per-step PSNR {[round(v, 1) for v in figures.psnr_db]}, top-5 overlap "
        f"{np.mean(figures.top5_overlap):.2f}, argmax agreement {figures.argmax_agreement:.2f}"
    )
    assert len(figures.psnr_db) == NEW_TOKENS
    assert figures.worst_psnr_db > floor, f"{cache} {precision}: steps {figures.psnr_db} (floor {floor} dB)"
    assert figures.argmax_agreement == 1.0, figures.argmax_agrees


def test_the_two_cache_forms_give_the_same_tokens_and_prefill_matches_sequential_decoding(decoders):
    _, _, _, prompt, tokens, _ = decoders
    state, io = program(decoders, "state", "fp32"), program(decoders, "io", "fp32")
    assert token_agreement(state, prompt, tokens).tokens == token_agreement(io, prompt, tokens).tokens
    for lm, floor in ((state, 70), (io, 100)):
        value = prefill_vs_sequential(lm, prompt)
        assert value > floor, f"{lm.cache_form}: prefill vs sequential {value:.1f} dB (floor {floor})"


def test_fp16_hazards_of_a_stateful_program_a_step_at_a_time(decoders):
    _, lm, packages, prompt, tokens, _ = decoders
    states, reports = None, []
    for t in range(3):
        feed = {
            "input_ids": tokens[:, t : t + 1].int().numpy(),
            "position": np.array([t], np.int32),
            "position_ids": np.array([[t]], np.int32),
            "attention_mask": np.ones((1, CAPACITY), np.int32),
        }
        report = find_hazards(packages["state", "fp16"], feed, function_name="decode", states=states)
        states = report.states_after
        reports.append(report)
    assert all(r.first_non_finite is None for r in reports)
    assert set(states) == {"lm_model_kv_cache_k_cache", "lm_model_kv_cache_v_cache"}
    k = states["lm_model_kv_cache_k_cache"]  # (layers, 1, capacity, 1, channels): slots 0..2 written
    assert np.abs(k[:, :, :3]).sum(axis=(0, 1, 3, 4)).min() > 0 and not k[:, :, 3:].any()
    assert all(r.output_psnr_db["logits"] > 40 for r in reports), [r.output_psnr_db for r in reports]


def test_bad_decoder_input_is_refused_with_expected_and_received(decoders, tmp_path):
    _, lm, packages, prompt, *_ = decoders
    p = program(decoders, "state", "fp16")
    with pytest.raises(ValueError, match=r"inside the cache capacity of 40 \(slots 0..39\)"):
        p.decode_step(prompt[:, :1], CAPACITY, None, None)
    with pytest.raises(
        ValueError, match=r"expected at most 8 tokens \(the program's prefill length\), got 9"
    ):
        p.prefill(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="cache: expected one of \\['state', 'io'\\], got 'kv'"):
        convert_decoder(lm, tmp_path / "x.mlpackage", cache="kv")
    with pytest.raises(ValueError, match="prefill_length: expected 1..8"):
        convert_decoder(lm, tmp_path / "x.mlpackage", prefill_length=9)
    assert not list(tmp_path.iterdir())
    single = tmp_path / "single.mlpackage"
    from verification.coreml import convert
    from verification.mil import load_program  # noqa: F401 (the package below has one function)

    save(convert(torch.nn.Linear(2, 2), (torch.zeros(1, 2),)), single)
    with pytest.raises(PackageError, match=r"expected functions \['prefill', 'decode'\], got \['main'\]"):
        ProgramCausalLM(single, lm.decoder_config, backend="mil")
