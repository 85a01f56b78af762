"""The decoder run's fp16_unrepresentable_constants over both functions, on a tiny converted decoder:
coremltools' default rsqrt epsilon is reported and not counted; a real underflow in the decode function
is counted and fails the check (planted twice: a constant edited in the package, the exclusion removed)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from coremltools.proto import Model_pb2

import ane_models
from verification.decoders.conversion import convert_decoder
from verification.mil import hazards as mil_hazards
from verification.release import decoder_checks
from verification.release.context import judged_check
from verification.release.decoder_pipeline import DecoderOptions, _Ctx

TINY = dict(
    vocab_size=96,
    hidden_size=48,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=3,
    num_key_value_heads=1,
    max_position_embeddings=64,
    rms_norm_eps=1e-5,
)
PREFILL, CONTEXT = 8, 16
MODEL_FILE = Path("Data/com.apple.CoreML/model.mlmodel")


@dataclass
class _Converted:
    path: Path


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    torch.manual_seed(0)
    config = transformers.LlamaConfig(**TINY, attn_implementation="eager")
    hf = transformers.LlamaForCausalLM(config).eval()
    lm = ane_models.optimize(hf, cache_capacity=CONTEXT, prefill_length=PREFILL)
    path = tmp_path_factory.mktemp("tiny") / "tiny_state_fp16.mlpackage"
    return convert_decoder(lm, path, cache="state", precision="fp16", prefill_length=PREFILL).path


def _run_hazards(path, cache="state"):
    o = DecoderOptions(model="smollm2", cache=cache, prefill_len=PREFILL, context=CONTEXT, new_tokens=4)
    checks, details = [], {}

    def judge(name, metric, value, reason=None):
        checks.append(judged_check(name, metric, value, _Ctx(o), reason=reason))
        return checks[-1]

    prompt = torch.arange(1, 7)[None]
    decoder_checks.hazards(_Converted(Path(path)), o, prompt, judge, details)
    return {c["name"]: c for c in checks}, details


def _with_decode_epsilon(package: Path, target: Path, value: float) -> tuple[Path, str]:
    """A copy of ``package`` whose decode function's first rsqrt epsilon (coremltools' 1e-12) is
    ``value``; returns the copy and the constant's name."""
    shutil.copytree(package, target)
    spec = Model_pb2.Model()
    spec.ParseFromString((target / MODEL_FILE).read_bytes())
    function = spec.mlProgram.functions["decode"]
    block = function.block_specializations[function.opset]
    for op in block.operations:
        floats = op.attributes["val"].immediateValue.tensor.floats.values if op.type == "const" else []
        if len(floats) == 1 and np.isclose(floats[0], mil_hazards.CONVERTER_RSQRT_EPSILON, rtol=1e-3):
            floats[0] = value
            (target / MODEL_FILE).write_bytes(spec.SerializeToString())
            return target, op.outputs[0].name
    raise AssertionError("no rsqrt epsilon of 1e-12 in the decode function")


def test_the_converter_epsilon_is_reported_in_both_functions_and_not_counted(package):
    checks, details = _run_hazards(package)
    check = checks["fp16_unrepresentable_constants"]
    assert check["measured"] and check["passed"] and check["value"] == 0, (check, details)
    assert details["fp16_unrepresentable_constants"] == []
    text = details["hazards_text"]
    prefill, decode = text.split("\n\ndecode:\n")
    for name, part in (("prefill", prefill), ("decode", decode)):
        assert "[converter_epsilon]" in part, f"{name}: no converter epsilon reported\n{part}"
    assert checks["fp16_non_finite_ops"]["passed"], checks["fp16_non_finite_ops"]


def test_an_epsilon_of_1e9_in_the_decode_function_is_counted_and_fails(package, tmp_path):
    """Planted: one rsqrt epsilon of the decode function is 1e-9 (0 in fp16, and not coremltools' default,
    so a real underflow); the prefill function is untouched, so only a scan of decode finds it."""
    planted, name = _with_decode_epsilon(package, tmp_path / "planted.mlpackage", 1e-9)
    checks, details = _run_hazards(planted)
    check = checks["fp16_unrepresentable_constants"]
    found = details["fp16_unrepresentable_constants"]
    assert check["value"] == 1 and check["passed"] is False, (check, found)
    assert (found[0]["function"], found[0]["constant"], found[0]["kind"]) == ("decode", name, "underflow")
    assert found[0]["used_by"] and "rsqrt" in found[0]["used_by"][0], found


def test_counting_the_converter_epsilon_would_fail_the_check(package, monkeypatch):
    """Planted: the converter-epsilon exclusion removed; every rsqrt epsilon (1e-12, one per norm, in both
    functions) would count as an underflow. The test guards that the exclusion is what keeps it at 0."""
    monkeypatch.setattr(mil_hazards, "_only_converter_epsilon", lambda *a: False)
    checks, details = _run_hazards(package)
    check, found = checks["fp16_unrepresentable_constants"], details["fp16_unrepresentable_constants"]
    norms = 2 * TINY["num_hidden_layers"] + 1
    assert check["value"] == 2 * norms and check["passed"] is False, (check["value"], norms, found)
    assert {f["function"] for f in found} == {"prefill", "decode"}


def test_without_the_hazard_finder_the_constants_are_still_scanned(package):
    """--cache io (the hazard finder runs state programs only): both functions' constants are scanned."""
    checks, details = _run_hazards(package, cache="io")
    assert checks["fp16_non_finite_ops"]["measured"] is False and checks["fp16_non_finite_ops"]["reason"]
    check = checks["fp16_unrepresentable_constants"]
    assert check["measured"] and check["value"] == 0, check
