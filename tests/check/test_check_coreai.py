"""``ane-verify check MODEL.aimodel``: a Core AI asset judged on Core AI's runtime (the interpreter bundled
in coreai-core here). The asset ``run --target coreai`` made gets ``run``'s figure back and PASSES; bad
input exits 2. Assets converted straight from transformers by coreai-torch, and their planted defects:
test_check_foreign_encoders.py, beside coremltools' packages."""

import json
from pathlib import Path

import pytest
import transformers

from tests.foreign import coreai_straight
from tests.foreign.seeding import draw_weights
from verification.release.cli import main

pytestmark = pytest.mark.coreai
SEQ = 16


def _check(package, reference, out, *extra) -> tuple[int, dict, dict]:
    code = main(
        ["check", str(package), "--reference", str(reference), *map(str, extra), "--out", str(out), "--quiet"]
    )
    report = json.loads((Path(out) / "report.json").read_text())
    return code, {c["name"]: c for c in report["checks"]}, report


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    return coreai_straight.distilbert_model(tmp_path_factory.mktemp("coreai-straight"))


@pytest.fixture(scope="module")
def own_run(tmp_path_factory):
    """``run --target coreai`` of a seeded tiny DistilBERT classifier: its report and its asset."""
    root = tmp_path_factory.mktemp("coreai-own")
    config = transformers.DistilBertConfig(
        vocab_size=120, dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=64, num_labels=3
    )
    draw_weights(transformers.DistilBertForSequenceClassification(config).eval(), 5).save_pretrained(
        root / "reference"
    )
    out = root / "run"
    argv = ["run", "--weights", root / "reference", "--target", "coreai", "--seq-len", SEQ, "--out", out]
    assert main([*map(str, argv), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    return root / "reference", report, out / report["artifacts"]["optimized_aimodel"]


def test_check_agrees_with_run_on_its_own_asset_and_passes(own_run, tmp_path):
    reference, ran, asset = own_run
    code, checks, report = _check(asset, reference, tmp_path / "c")
    ran_parity = next(c["value"] for c in ran["checks"] if c["name"] == "coreai_parity_psnr_db")
    assert abs(checks["coreai_parity_psnr_db"]["value"] - ran_parity) < 0.1, (checks, ran_parity)
    failed = {n: c["value"] for n, c in checks.items() if c["passed"] is False}
    assert code == 0 and not failed, failed
    assert report["config"]["target"] == "coreai" and "Core AI" in report["config"]["runtime"]
    assert report["config"]["precision"] == "fp16"
    # what a saved asset cannot show is not measured, with the reason: never passed by default
    assert checks["fp16_non_finite_ops"]["measured"] is False and checks["fp16_non_finite_ops"]["reason"]


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--backend", "mil"], "--backend mil"),
        (["--compress", "palettize:4"], "--compress palettize:4"),
    ],
)
def test_options_a_core_ai_asset_cannot_take_are_refused(straight, extra, expected, tmp_path, capsys):
    record = straight
    code = main(
        ["check", record.package, "--reference", record.reference, *extra, "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def test_a_causal_lm_reference_is_refused_before_anything_runs(straight, tmp_path, capsys):
    code = main(["check", straight.package, "--reference", "smollm2", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "causal LM" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("kind", ["file", "empty directory"])
def test_what_is_not_a_core_ai_asset_is_refused(straight, kind, tmp_path, capsys):
    asset = tmp_path / "broken.aimodel"
    if kind == "file":
        asset.write_text("not an asset")
    else:
        asset.mkdir()
    code = main(["check", str(asset), "--reference", straight.reference, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "broken.aimodel" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def test_without_the_coreai_extra_an_asset_is_refused_with_the_install_command(
    straight, monkeypatch, tmp_path, capsys
):
    from verification.coreai import extra

    monkeypatch.setattr(extra, "missing_reason", lambda: f"coreai not installed; {extra.INSTALL_HINT}")
    code = main(["check", straight.package, "--reference", "distilbert", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "pip install" in err and len(err.strip().splitlines()) == 1, err
