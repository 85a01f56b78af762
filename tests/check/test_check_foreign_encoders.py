"""``ane-verify check`` of encoder packages made by other producers' code (tests/foreign): Apple's
``ane_transformers`` tutorial DistilBERT (checked in, made in its own environment), BERT and DistilBERT
converted straight by coremltools as its guide does and by coreai-torch (Core AI assets), and the guide's
BERT compressed by ``coremltools.optimize``. Each is judged against its checkpoint, and each planted defect
fails."""

import json
import shutil
from pathlib import Path

import pytest
import torch
import transformers

from tests.foreign import coreai_straight, coremltools_guide
from tests.foreign.compressed import compressed_bert
from verification.release.cli import main

TRANSFORMERS_MAJOR = int(transformers.__version__.split(".")[0])
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


# Straight from transformers, each producer's own way: coremltools as its guide converts (a Core ML
# package, readiness told by copies per layer) and coreai-torch (a Core AI asset, judged on Core AI's
# interpreter: projections left as matmuls with constant weights break Core AI's rules).
PRODUCERS = {
    "coremltools_guide": (coremltools_guide, "coreml_parity_psnr_db", "readiness_copies_per_layer"),
    "coreai_straight": (coreai_straight, "coreai_parity_psnr_db", "coreai_linear_ops"),
}
BY_PRODUCER = [
    "coremltools_guide",
    pytest.param("coreai_straight", marks=pytest.mark.coreai),
]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """producer -> {"bert": record, "distilbert": record}, each faithful record made once."""
    made: dict = {}

    def get(producer: str) -> dict:
        if producer not in made:
            root, module = tmp_path_factory.mktemp(producer), PRODUCERS[producer][0]
            made[producer] = {
                "bert": module.bert_classifier(root / "bert"),
                "distilbert": module.distilbert_model(root / "distilbert"),
            }
        return made[producer]

    return get


@pytest.mark.parametrize("producer", BY_PRODUCER)
@pytest.mark.parametrize("name", ["bert", "distilbert"])
def test_straight_from_transformers_holds_parity_and_is_told_not_ane_ready(
    straight, producer, name, tmp_path
):
    """Parity passes; the package is not laid out for the Neural Engine, and check says so (for
    coremltools' package also the fp16 hazard of transformers' finfo.min mask)."""
    record = straight(producer)[name]
    _, parity, not_ready = PRODUCERS[producer]
    code, checks, details = _check(record.package, record.reference, tmp_path / "c")
    if producer == "coremltools_guide" and name == "bert" and TRANSFORMERS_MAJOR < 5:
        # transformers 4 masks BERT's scores with (1 - mask) * finfo(float32).min, which the fp16 program
        # holds as -inf, and 0 * -inf is NaN (coremltools #2669): the package outputs NaN; check says so
        assert checks[parity]["value"] == "nan" and checks[parity]["passed"] is False, checks[parity]
        assert checks["fp16_non_finite_ops"]["passed"] is False, checks["fp16_non_finite_ops"]
    else:
        assert checks[parity]["passed"], checks[parity]
    found = details["mapping"]["outputs"][0]
    assert found["layout"] == ("bc" if name == "bert" else "bsc"), found
    assert checks[not_ready]["passed"] is False, checks[not_ready]
    assert code == 1


@pytest.mark.parametrize("producer", BY_PRODUCER)
@pytest.mark.parametrize(
    "model, defect",
    [
        ("bert", "swapped_query"),
        ("distilbert", "bsc_scrambled"),
        pytest.param("bert", "mask_inverted", marks=pytest.mark.slow),
    ],
)
def test_each_planted_defect_fails_parity(straight, producer, model, defect, tmp_path):
    module, parity, _ = PRODUCERS[producer]
    make = module.bert_classifier if model == "bert" else module.distilbert_model
    record = make(tmp_path / "made", defect=defect)
    shutil.rmtree(record.reference)  # the producer's own checkpoint is the same seeded one
    code, checks, _ = _check(record.package, straight(producer)[model].reference, tmp_path / "c")
    value = checks[parity]["value"]  # "nan" where the package outputs NaN (transformers 4: see above)
    assert code == 1 and checks[parity]["passed"] is False, (producer, defect, checks[parity])
    assert value == "nan" or value < 40, (producer, defect, checks[parity])


@pytest.mark.coreai
def test_a_mask_inverted_in_a_core_ai_asset_fails_parity(straight, tmp_path):
    """The fast selection's mask defect (Core AI converts in about 2 s; the Core ML one is slow)."""
    record = coreai_straight.bert_classifier(tmp_path / "made", defect="mask_inverted")
    code, checks, _ = _check(record.package, straight("coreai_straight")["bert"].reference, tmp_path / "c")
    assert code == 1 and checks["coreai_parity_psnr_db"]["value"] < 40, checks["coreai_parity_psnr_db"]


@pytest.mark.parametrize("producer", BY_PRODUCER)
def test_a_transposed_output_is_told_by_its_shape(straight, producer, tmp_path):
    """(B, C, S) with the name kept: check reads the layout from the shape and compares it right."""
    module, parity, _ = PRODUCERS[producer]
    record = module.distilbert_model(tmp_path / "made", defect="bcs")
    _, checks, details = _check(record.package, straight(producer)["distilbert"].reference, tmp_path / "c")
    assert details["mapping"]["outputs"][0]["layout"] == "bcs"
    assert checks[parity]["passed"], checks[parity]


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
