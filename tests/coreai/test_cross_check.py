"""The cross-check (verification.coreai.cross_check): the MIL executor and Core AI's interpreter on the same
model agree to rounding; where Core AI's fp16 programs lose more, the op is its fp16 matmul accumulation.
The full table: python scripts/coreai_cross_check.py (docs/coreai.md)."""

import pytest
from coreai_cases import model_under_test

pytestmark = [pytest.mark.coreai, pytest.mark.coreml]


def test_the_two_runtimes_agree_on_the_ane_distilbert():
    from verification.coreai.cross_check import cross_check

    model, inputs = model_under_test("distilbert-Model")
    fp32 = cross_check("distilbert-Model", model, inputs, "fp32")
    assert [a.mil_mode for a in fp32] == ["fp32"]
    assert fp32[0].mil_vs_coreai_db > 130 and not fp32[0].disagrees, fp32
    fp16 = {a.mil_mode: a for a in cross_check("distilbert-Model", model, inputs, "fp16")}
    assert set(fp16) == {"fp16_storage", "fp16_native"}
    native = fp16["fp16_native"]
    # independent fp16 roundings: each runtime within a few dB of the other's distance to torch
    assert not native.disagrees and native.mil_vs_coreai_db > 60, native
    print(f"distilbert-Model: {fp32[0]}\n{native}")


def test_disagreement_means_beyond_independent_rounding():
    from verification.coreai.cross_check import Agreement

    def agreement(mil, core, between):
        return Agreement("m", "fp16", 0, "fp16_native", mil, core, between)

    assert not agreement(60.0, 58.0, 55.5).disagrees  # 3 dB below the lower figure: rounding adds up
    assert agreement(60.0, 58.0, 54.5).disagrees


def test_core_ai_fp16_matmul_accumulates_in_fp16_and_its_conv_does_not():
    """What the cross-check found behind the baselines' larger fp16 loss on Core AI (coreai-core 1.0.0b3)."""
    from verification.coreai.cross_check import matmul_accumulation_probe

    probe = matmul_accumulation_probe(depth=512)
    print(probe)
    assert abs(probe["coreai_matmul"] - probe["sequential_fp16_accumulation"]) < 2.0, probe
    assert probe["coreai_conv2d"] > probe["coreai_matmul"] + 15, probe
    assert abs(probe["coreai_conv2d"] - probe["torch_fp16_gemm"]) < 1.0, probe
