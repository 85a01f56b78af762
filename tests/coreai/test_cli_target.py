"""``ane-verify run MODEL --target coreai`` end to end on a tiny local checkpoint: the same four reports,
the .aimodel artifacts, each figure naming its target and runtime; and its bad input (exit 2, one line,
nothing written)."""

from pathlib import Path

import pytest
import torch
import transformers

from verification.release.cli import main
from verification.release.reports.schema import read

pytestmark = pytest.mark.coreai


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    config = transformers.DistilBertConfig(
        dim=32, n_heads=4, n_layers=2, hidden_dim=48, vocab_size=97, max_position_embeddings=64, num_labels=3
    )
    torch.manual_seed(0)
    model = transformers.DistilBertForSequenceClassification(config)
    with torch.no_grad():  # norms away from their default (1, 0)
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.2)
    path = tmp_path_factory.mktemp("checkpoint") / "tiny-distilbert"
    model.save_pretrained(path, safe_serialization=True)
    return path


@pytest.fixture(scope="module")
def finished_run(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    argv = [
        "run",
        "--weights",
        str(tiny_checkpoint),
        "--target",
        "coreai",
        "--seq-len",
        "16",
        "--out",
        str(out),
    ]
    return main(argv), out


def test_run_writes_the_aimodels_and_the_same_reports(finished_run, capsys):
    code, out = finished_run
    assert sorted(p.name for p in out.iterdir()) == [
        "HuggingFace_ane_transformers_tiny-distilbert_seqLen16_batchSize1.aimodel",
        "HuggingFace_baseline_tiny-distilbert_seqLen16_batchSize1.aimodel",
        "junit.xml",
        "report.html",
        "report.json",
        "report.md",
    ]
    report = read(out / "report.json")
    config = report["config"]
    assert config["target"] == "coreai" and config["backend"] == "coreai" and config["exporter"] == "export"
    assert config["runtime"].startswith("Core AI interpreter (coreai-core 1.0.0b3")
    checks = {c["name"]: c for c in report["checks"]}
    parity = checks["coreai_parity_psnr_db"]
    assert (
        parity["passed"] is True and parity["threshold"] == 50.0 and "Core AI interpreter" in parity["metric"]
    )
    assert checks["coreai_validator_non_finite_nodes"]["value"] == 0
    # Core AI's authoring rules, with their source: the coreai layout (ane_models.set_layout) keeps them all
    rules = [
        c
        for c in report["checks"]
        if c["name"].startswith("coreai_") and "neural_engine_rules" in c.get("reason", "")
    ]
    assert len(rules) == 7
    failed = {c["name"]: (c["value"], c.get("reason")) for c in report["checks"] if c["passed"] is False}
    assert failed == {}, failed
    assert {c["name"]: c["value"] for c in rules}["coreai_fp32_tensors"] == 0
    assert code == 0
    for name in ("report.md", "report.html", "junit.xml"):
        text = (out / name).read_text()
        assert "coreai_parity_psnr_db" in text and "coreai" in text, name


def test_gate_knows_the_core_ai_checks(finished_run, capsys):
    _, out = finished_run
    assert main(["gate", str(out / "report.json")]) == 0
    assert main(["gate", str(out / "report.json"), "--threshold", "coreai_parity_psnr_db=200"]) == 1
    assert main(["gate", str(out / "report.json"), "--threshold", "coreai_fp32_tensors=-1"]) == 1


def _one_line_error(capsys) -> str:
    # stage lines (and transformers' weight-loading bar) may precede it: one error line, the last one
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("ane-verify:")]
    assert len(errors) == 1 and err[-1] == errors[0] and errors[0].startswith("ane-verify: error: "), err
    return errors[0]


def test_without_the_extra_one_line_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    from verification.coreai import extra

    real = extra.importlib.util.find_spec
    monkeypatch.setattr(
        extra.importlib.util, "find_spec", lambda name, *a: None if name == "coreai_torch" else real(name, *a)
    )
    out = tmp_path / "out"
    assert main(["run", "distilbert", "--target", "coreai", "--out", str(out)]) == 2
    line = _one_line_error(capsys)
    assert 'pip install -c constraints.txt -e ".[coreai]"' in line, line
    assert not out.exists()


def test_coreml_options_are_refused_with_the_coreai_target(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "distilbert", "--target", "coreai", "--backend", "mil", "--out", str(out)]) == 2
    assert "--backend mil: applies to --target coreml" in _one_line_error(capsys)
    assert main(["run", "distilbert", "--target", "coreai", "--exporter", "trace", "--out", str(out)]) == 2
    assert "Core AI converts from torch.export only" in _one_line_error(capsys)
    assert not out.exists()


def test_a_model_core_ai_cannot_convert_exits_2_naming_the_converters_error(
    tiny_checkpoint, tmp_path, capsys, monkeypatch
):
    import verification.coreai as coreai

    def refuse(model, inputs, **kwargs):
        raise coreai.CoreAIConversionError(
            "coreai-torch 0.4.3 TorchConverter could not convert the program (ValueError: The exported "
            "program contains unsupported ATen ops: aten.cumprod.default.)"
        )

    monkeypatch.setattr(coreai, "convert", refuse)
    out = tmp_path / "out"
    argv = [
        "run",
        "--weights",
        str(tiny_checkpoint),
        "--target",
        "coreai",
        "--seq-len",
        "16",
        "--out",
        str(out),
    ]
    assert main(argv) == 2
    assert "TorchConverter could not convert the program" in _one_line_error(capsys)
    assert not out.exists(), "nothing half-written"
