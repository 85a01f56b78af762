"""``ane-verify check`` of a stateful Llama made by Apple's recipe (tests/foreign/apple_stateful_llama.py:
its own names inputIds/causalMask/keyCache/valueCache, one function for prefill and decode, flexible
lengths, additive fp16 mask): it PASSES against its checkpoint, and FAILS with each planted defect."""

import json

import pytest

from tests.foreign import apple_stateful_llama
from verification.release.cli import main

ARGS = ["--new-tokens", "6", "--prefill-len", "8", "--quiet"]


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return apple_stateful_llama.make(tmp_path_factory.mktemp("apple"))


def _checked(package, reference, out) -> tuple[int, dict]:
    code = main(["check", str(package), "--reference", str(reference), *ARGS, "--out", str(out)])
    return code, {c["name"]: c for c in json.loads((out / "report.json").read_text())["checks"]}


def test_apples_recipe_passes_against_its_checkpoint(good, tmp_path):
    package, reference = good
    code, checks = _checked(package, reference, tmp_path / "c")
    failed = {n: c["value"] for n, c in checks.items() if c["passed"] is False}
    assert code == 0 and not failed, failed
    assert checks["decoder_step_psnr_db"]["value"] > 60, checks["decoder_step_psnr_db"]
    assert checks["decoder_confident_token_agreement"]["value"] == 1.0
    mapping = json.loads((tmp_path / "c" / "report.json").read_text())["details"]["mapping"]
    assert mapping["states"] == {"key_cache": "keyCache", "value_cache": "valueCache"}
    assert mapping["functions"] == {"prefill": "main", "decode": "main"}
    assert {m["role"]: m["form"] for m in mapping["inputs"]["main"]}["causal_mask"] == "additive"
    assert mapping["outputs"][0]["layout"] == "bsc"


@pytest.mark.parametrize(
    "defect, failing",
    [
        ("state_not_written", "decoder_step_psnr_db"),
        ("mask_sign", "decoder_prefill_vs_sequential_psnr_db"),
        ("swapped_layers", "decoder_step_psnr_db"),
    ],
)
def test_each_planted_defect_fails(good, defect, failing, tmp_path):
    _, reference = good
    package, _ = apple_stateful_llama.make(tmp_path / "made", defect=defect)
    code, checks = _checked(package, reference, tmp_path / "c")
    assert code == 1 and checks[failing]["passed"] is False, (defect, checks[failing])
