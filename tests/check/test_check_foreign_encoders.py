"""``ane-verify check`` of encoder packages made by other producers' code (tests/foreign): Apple's
``ane_transformers`` tutorial DistilBERT (checked in, made in its own environment), BERT and DistilBERT
converted straight by coremltools as its guide does, and the guide's BERT compressed by
``coremltools.optimize``. Each is judged against its checkpoint, and each planted defect fails."""

import json
import shutil
from pathlib import Path

import pytest
import torch
import transformers

from tests.foreign import coremltools_guide
from tests.foreign.compressed import compressed_bert
from verification.release.cli import main

ANE_TRANSFORMERS = Path(__file__).parents[1] / "foreign" / "packages" / "ane_transformers_distilbert"


def _check(package, reference, out, *extra) -> tuple[int, dict, dict]:
    code = main(
        ["check", str(package), "--reference", str(reference), *map(str, extra), "--out", str(out), "--quiet"]
    )
    report = json.loads((Path(out) / "report.json").read_text())
    return code, {c["name"]: c for c in report["checks"]}, report["details"]


def test_apples_ane_transformers_package_passes(tmp_path):
    package = next(ANE_TRANSFORMERS.glob("*.mlpackage"))
    code, checks, details = _check(package, ANE_TRANSFORMERS / "reference", tmp_path / "c")
    failed = {n: c["value"] for n, c in checks.items() if c["passed"] is False}
    assert code == 0 and not failed, failed
    assert checks["coreml_parity_psnr_db"]["value"] > 65, checks["coreml_parity_psnr_db"]
    roles = {m["name"]: m["role"] for m in details["mapping"]["inputs"]["main"]}
    assert roles == {"input_input_ids": "input_ids", "input_attention_mask": "attention_mask"}


def test_apples_package_fails_against_a_reference_with_two_layers_swapped(tmp_path):
    """The same package against its checkpoint with layer 0's and 1's queries swapped: as if the package
    had them swapped."""
    model = transformers.DistilBertForSequenceClassification.from_pretrained(ANE_TRANSFORMERS / "reference")
    layers = model.distilbert.transformer.layer
    with torch.no_grad():
        first = layers[0].attention.q_lin.weight.clone()
        layers[0].attention.q_lin.weight.copy_(layers[1].attention.q_lin.weight)
        layers[1].attention.q_lin.weight.copy_(first)
    model.save_pretrained(tmp_path / "swapped")
    package = next(ANE_TRANSFORMERS.glob("*.mlpackage"))
    code, checks, _ = _check(package, tmp_path / "swapped", tmp_path / "c")
    assert code == 1 and checks["coreml_parity_psnr_db"]["passed"] is False, checks["coreml_parity_psnr_db"]


@pytest.fixture(scope="module")
def guide(tmp_path_factory):
    root = tmp_path_factory.mktemp("guide")
    return {
        "bert": coremltools_guide.bert_classifier(root / "bert"),
        "distilbert": coremltools_guide.distilbert_model(root / "distilbert"),
    }


@pytest.mark.parametrize("name", ["bert", "distilbert"])
def test_coremltools_straight_from_transformers_holds_parity_and_is_told_not_ane_ready(guide, name, tmp_path):
    """Parity passes; the package is not laid out for the Neural Engine, and check says so: readiness
    counts the guide's per-layer copies, and the fp16 hazards find transformers' finfo.min mask."""
    record = guide[name]
    code, checks, details = _check(record.package, record.reference, tmp_path / "c")
    assert checks["coreml_parity_psnr_db"]["passed"], checks["coreml_parity_psnr_db"]
    assert details["mapping"]["outputs"][0]["layout"] == "bsc" if name == "distilbert" else "bc"
    assert checks["readiness_copies_per_layer"]["passed"] is False, checks["readiness_copies_per_layer"]
    assert code == 1


@pytest.mark.parametrize(
    "producer, defect",
    [
        ("bert_classifier", "swapped_query"),
        ("distilbert_model", "bsc_scrambled"),
        pytest.param("bert_classifier", "mask_inverted", marks=pytest.mark.slow),
    ],
)
def test_each_planted_defect_fails_parity(guide, producer, defect, tmp_path):
    record = getattr(coremltools_guide, producer)(tmp_path / "made", defect=defect)
    reference = guide["bert" if producer == "bert_classifier" else "distilbert"].reference
    shutil.rmtree(record.reference)  # the producer's own checkpoint is the same seeded one
    code, checks, _ = _check(record.package, reference, tmp_path / "c")
    assert code == 1 and checks["coreml_parity_psnr_db"]["value"] < 40, (
        defect,
        checks["coreml_parity_psnr_db"],
    )


def test_a_transposed_output_is_told_by_its_shape(guide, tmp_path):
    """(B, C, S) with the name kept: check reads the layout from the shape and compares it right."""
    record = coremltools_guide.distilbert_model(tmp_path / "made", defect="bcs")
    code, checks, details = _check(record.package, guide["distilbert"].reference, tmp_path / "c")
    assert details["mapping"]["outputs"][0]["layout"] == "bcs"
    assert checks["coreml_parity_psnr_db"]["passed"], checks["coreml_parity_psnr_db"]


@pytest.mark.parametrize("defect", [None, "bits_mismatch"])
def test_compression_found_against_the_declared_recipe(defect, tmp_path):
    record = compressed_bert(tmp_path / "made", defect=defect)
    declared = record.compression["declared"]
    _, checks, details = _check(record.package, record.reference, tmp_path / "c", "--compress", declared)
    verdict = checks["compression_weights_not_as_declared"]
    if defect is None:
        assert verdict["value"] == 0 and verdict["passed"], details["compression_found"].get(
            "not_as_declared"
        )
    else:
        assert verdict["value"] > 0 and verdict["passed"] is False, verdict
