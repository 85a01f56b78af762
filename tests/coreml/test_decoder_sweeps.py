"""Stateful sweeps on a converted tiny seeded Llama (prefill length 64, cache of 72 slots), through the MIL
executor: prefill lengths 1, 16, 17 and 64 against transformers and against one decode step per token,
decode steps to the last cache slot and a refused one past it, and the same prompt twice on one state
after a reset (identical logits). The real SmolLM2 runs the same sweeps behind ``slow``
(test_real_smollm2_program.py)."""

from __future__ import annotations

import pytest
from decoder_sweeps import (
    check_decode_to_the_last_slot,
    check_prefill,
    check_prefill_against_steps,
    check_same_prompt_twice,
    prompt_of,
)
from test_decoder_programs import tiny_llama

import ane_models
from verification.decoders.conversion import convert_decoder
from verification.decoders.program_lm import ProgramCausalLM
from verification.thresholds import COREML_FP32_PSNR_DB

CAPACITY, PREFILL = 72, 64
LENGTHS = [1, 16, 17, 64]
# fp32 programs: the io form at the fp32 program bar (its 56 decode steps measured 99.9 to 105.9 dB); the
# state form keeps its cache in fp16 (Core ML's only state type), hence its lower floor
FLOORS = {"state": 70.0, "io": COREML_FP32_PSNR_DB}


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweeps")
    hf = tiny_llama(seed=4, max_positions=128)
    lm = ane_models.optimize(hf, cache_capacity=CAPACITY, prefill_length=PREFILL)
    made = {}
    for cache in ("state", "io"):
        path = convert_decoder(lm, root / f"{cache}.mlpackage", cache=cache, precision="fp32").path
        made[cache] = ProgramCausalLM(path, lm.decoder_config, backend="mil")
    return hf, made


@pytest.mark.parametrize("cache", ["state", "io"])
@pytest.mark.parametrize("length", LENGTHS)
def test_prefill_lengths_match_transformers_and_one_step_per_token(programs, cache, length):
    hf, made = programs
    prompt = prompt_of(length, hf.config.vocab_size)
    check_prefill(made[cache], hf, prompt, FLOORS[cache])
    check_prefill_against_steps(made[cache], prompt, FLOORS[cache])


@pytest.mark.parametrize("cache", ["state", "io"])
def test_decode_steps_up_to_the_last_slot_and_one_past_it_refused(programs, cache):
    hf, made = programs
    check_decode_to_the_last_slot(made[cache], hf, 16, FLOORS[cache])


@pytest.mark.parametrize("length", [1, 17, 64])
def test_the_same_prompt_twice_on_one_state_after_a_reset_gives_identical_logits(programs, length):
    hf, made = programs
    check_same_prompt_twice(made["state"], prompt_of(length, hf.config.vocab_size))
