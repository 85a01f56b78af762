"""ane-verify end to end on tiny local checkpoints: reports, exit codes, gate, and bad input."""

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers

from verification.release.cli import main
from verification.release.reports.schema import read

pytestmark = pytest.mark.coreml


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    config = transformers.BertConfig(
        hidden_size=32,
        num_attention_heads=4,
        num_hidden_layers=2,
        intermediate_size=48,
        vocab_size=97,
        max_position_embeddings=64,
        num_labels=2,
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("checkpoint") / "tiny-bert"
    transformers.BertForSequenceClassification(config).save_pretrained(path, safe_serialization=True)
    return path


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture(scope="module")
def finished_run(tiny_checkpoint, tmp_path_factory):
    """One run, with stderr a terminal (so the counters inside the stages are drawn)."""
    out = tmp_path_factory.mktemp("run") / "out"
    terminal, stderr = Terminal(), sys.stderr
    sys.stderr = terminal
    try:
        code = main(
            [
                "run",
                "--weights",
                str(tiny_checkpoint),
                "--seq-len",
                "16",
                "--batch-size",
                "2",
                "--out",
                str(out),
            ]
        )
    finally:
        sys.stderr = stderr
    return code, out, terminal.getvalue()


def test_run_writes_the_package_and_three_reports(finished_run, tiny_checkpoint):
    code, out, _ = finished_run
    assert code == 0, (out / "report.md").read_text() if (out / "report.md").exists() else "no report"
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "HuggingFace_ane_transformers_tiny-bert_seqLen16_batchSize2.mlpackage",
        "junit.xml",
        "report.html",
        "report.json",
        "report.md",
    ]
    report = read(out / "report.json")
    assert report["config"] == {
        "seq_len": 16,
        "batch_size": 2,
        "precision": "fp16",
        "exporter": "trace",
        "backend": "mil",
        "target": "coreml",
        "runtime": "MIL reference executor (verification.mil)",
    }
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["torch_parity_psnr_db"]["value"] > 90
    assert by_name["coreml_parity_psnr_db"]["passed"] is True
    assert by_name["speedup_vs_baseline"]["measured"] is False and by_name["speedup_vs_baseline"]["reason"]
    assert [s["name"] for s in report["details"]["stages"]][0] == "build baseline and optimized model"
    # off a Mac no check reads the baseline program: not converted, and the report says so where it is missed
    assert "baseline program was not converted" in by_name["speedup_vs_baseline"]["reason"]
    assert report["details"]["readiness"]["baseline"] is None
    assert "--with-baseline" in report["details"]["readiness"]["reason"]
    assert all(s["peak_mb"] > 100 for s in report["details"]["stages"]), report["details"]["stages"]
    memory = report["details"]["memory"]  # the tiny BERT's weights, counted from the checkpoint's model
    assert 0 < memory["weights_fp32_mb"] < 50 and memory["peak_over_weights"] > 1, memory
    # the reports say "worst first": the figures shown are the ones the ops are ranked by
    shown = [op["psnr_db"] for op in report["details"]["fp16_precision"]]
    assert shown and shown == sorted(shown), shown
    assert report["source"] == {
        "architecture": "BertForSequenceClassification",
        "checkpoint": str(tiny_checkpoint.resolve()),
        "seed": 0,
        "inputs": "random token ids (seed 0), rows after the first padded in their last quarter",
    }
    assert report["tool"]["name"] == "ane-verify" and report["created"].endswith("Z")
    assert {c["threshold_source"] for c in report["checks"]} == {"default"}
    assert all(c["direction"] in ("at_least", "at_most") for c in report["checks"])
    assert all(stat.S_IMODE(os.stat(out / name).st_mode) == 0o644 for name in ("report.json", "report.md"))

    # each ranked op names its torch module, and the program's parity is given layer by layer
    assert all(op["layer"] is not None for op in report["details"]["fp16_precision"]), report["details"]
    layers = report["details"]["coreml_layer_parity"]
    expected = ["backbone.embeddings", "backbone.layers.0", "backbone.layers.1"]
    assert [row["layer"] for row in layers["layers"]] == expected, layers
    assert all(row["psnr_db"] > 40 for row in layers["layers"]), layers


def test_progress_inside_the_long_stages_on_a_terminal(finished_run):
    _, _, stderr = finished_run
    assert "convert: programs converted [##########----------] 1/2" in stderr
    assert "Core ML parity and fp16 hazards: ops run [####################]" in stderr
    assert "rough estimate from the config" in stderr


def test_gate_exit_code_flips_when_a_threshold_passes_the_measured_value(finished_run, capsys):
    _, out, _ = finished_run
    measured = next(c for c in read(out / "report.json")["checks"] if c["name"] == "coreml_parity_psnr_db")[
        "value"
    ]
    assert (
        main(["gate", str(out / "report.json"), "--threshold", f"coreml_parity_psnr_db={measured - 1}"]) == 0
    )
    assert (
        main(["gate", str(out / "report.json"), "--threshold", f"coreml_parity_psnr_db={measured + 1}"]) == 1
    )
    assert "coreml_parity_psnr_db" in capsys.readouterr().out


def test_gate_reads_thresholds_from_pyproject(finished_run, tmp_path, monkeypatch, capsys):
    _, out, _ = finished_run
    (tmp_path / "pyproject.toml").write_text('[tool.ane-verify.thresholds]\n"coreml_parity_psnr_db" = 500\n')
    monkeypatch.chdir(tmp_path)
    assert main(["gate", str(out / "report.json")]) == 1
    row = next(
        line for line in capsys.readouterr().out.splitlines() if line.startswith("coreml_parity_psnr_db")
    )
    assert row.split()[2:] == ["500", "FAILED", str((tmp_path / "pyproject.toml").resolve())]
    assert (
        main(["gate", str(out / "report.json"), "--threshold", "coreml_parity_psnr_db=1"]) == 0
    )  # flags win


def test_strict_gate_fails_what_could_not_be_measured(finished_run):
    _, out, _ = finished_run
    assert main(["gate", str(out / "report.json"), "--strict"]) == 1


def _bad(args, capsys, expected: str):
    """Exit code 2 and one ``ane-verify: error`` line naming the problem (in-process, libraries imported
    earlier by other tests may still draw progress bars; the subprocess tests check stderr is one line)."""
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("ane-verify: error")]
    assert len(errors) == 1 and expected in errors[0], err


@pytest.mark.parametrize(
    "extra,expected",
    [
        (["--seq-len", "0"], "--seq-len: expected a length of at least 1, got 0"),
        (["--seq-len", "65"], "--seq-len: 65 exceeds the model's maximum of 64 positions"),
        (["--batch-size", "0"], "--batch-size: expected at least 1, got 0"),
    ],
)
def test_impossible_sizes(tiny_checkpoint, tmp_path, capsys, extra, expected):
    out = tmp_path / "out"
    _bad(["run", "--weights", str(tiny_checkpoint), "--out", str(out), *extra], capsys, expected)
    assert not out.exists(), "a failed run must not leave its output directory behind"


def test_weight_directories_that_cannot_be_used(tmp_path, capsys):
    _bad(
        ["run", "--weights", str(tmp_path / "nope"), "--out", str(tmp_path / "o")],
        capsys,
        "is not a directory",
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    _bad(["run", "--weights", str(empty), "--out", str(tmp_path / "o")], capsys, "no config.json")
    (empty / "config.json").write_text(json.dumps({"model_type": "bert"}))
    _bad(
        ["run", "--weights", str(empty), "--out", str(tmp_path / "o")],
        capsys,
        "no *.safetensors or pytorch_model.bin",
    )
    (empty / "model.safetensors").write_bytes(b"not really safetensors")
    _bad(["run", "--weights", str(empty), "--out", str(tmp_path / "o")], capsys, "cannot load the weights")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "kept, expected",
    [
        (lambda name: not name.startswith("classifier."), "lacks 2 of the BertForSequenceClassification"),
        (lambda name: False, "lacks {every} of the BertForSequenceClassification"),
    ],
    ids=["no classifier head", "an empty weights file"],
)
def test_a_checkpoint_missing_weights_is_refused_not_filled_at_random(
    tiny_checkpoint, tmp_path, capsys, kept, expected
):
    """transformers draws a missing weight at random and loads on; a gate that went on would verify a
    model nobody trained, and pass it."""
    from safetensors.torch import load_file, save_file

    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "config.json").write_text((tiny_checkpoint / "config.json").read_text())
    tensors = load_file(tiny_checkpoint / "model.safetensors")
    kept_tensors = {name: tensor for name, tensor in tensors.items() if kept(name)}
    save_file(kept_tensors, cut / "model.safetensors", metadata={"format": "pt"})
    argv = ["run", "--weights", str(cut), "--seq-len", "16", "--out", str(tmp_path / "o"), "--no-cache"]
    _bad(argv, capsys, expected.format(every=len(tensors)))
    assert not (tmp_path / "o").exists()


def test_unknown_model_is_a_usage_error(capsys):
    _bad(
        ["run", "gpt2"],
        capsys,
        "MODEL: invalid choice: 'gpt2' (expected one of distilbert, bert, roberta, reference, smollm2)",
    )


def test_output_directory_that_is_a_file_or_cannot_be_created(tiny_checkpoint, tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("keep me")
    _bad(
        ["run", "--weights", str(tiny_checkpoint), "--seq-len", "16", "--out", str(a_file)],
        capsys,
        "exists and is not a directory",
    )
    assert a_file.read_text() == "keep me"
    _bad(
        ["run", "--weights", str(tiny_checkpoint), "--seq-len", "16", "--out", "/proc/ane-verify-out"],
        capsys,
        "--out: cannot create",
    )


def test_a_failure_mid_run_leaves_the_output_directory_as_it_was(
    tiny_checkpoint, tmp_path, capsys, monkeypatch
):
    from verification.release import pipeline

    out = tmp_path / "out"
    out.mkdir()
    (out / "older.txt").write_text("from an earlier run")

    def broken_readiness(ctx):
        raise RuntimeError("planted failure in the readiness stage")

    monkeypatch.setattr(
        pipeline,
        "STAGE_FUNCTIONS",
        (*pipeline.STAGE_FUNCTIONS[:4], broken_readiness, *pipeline.STAGE_FUNCTIONS[5:]),
    )
    _bad(
        ["run", "--weights", str(tiny_checkpoint), "--seq-len", "8", "--out", str(out)],
        capsys,
        "planted failure",
    )
    assert sorted(p.name for p in out.iterdir()) == ["older.txt"]


@pytest.mark.parametrize(
    "content,expected",
    [
        ("{not json", "is not valid JSON"),
        ('{"schema_version": 1}', "missing keys"),
        ("[]", "expected a JSON object"),
    ],
)
def test_malformed_reports(tmp_path, capsys, content, expected):
    path = tmp_path / "report.json"
    path.write_text(content)
    _bad(["gate", str(path)], capsys, expected)


def test_tampered_report_is_refused(finished_run, tmp_path, capsys):
    _, out, _ = finished_run
    report = json.loads((out / "report.json").read_text())
    report["checks"][0]["threshold"] = 0  # lowered by hand
    tampered = tmp_path / "report.json"
    tampered.write_text(json.dumps(report))
    _bad(["gate", str(tampered)], capsys, "digest does not match the content")


@pytest.mark.parametrize(
    "table,expected",
    [
        ('[tool.ane-verify.thresholds]\n"no_such_check" = 1\n', "unknown check name no_such_check; known:"),
        ('[tool.ane-verify.thresholds]\n"coreml_parity_psnr_db" = "sixty"\n', "must be a finite number"),
        ("[tool.ane-verify]\nthreshold = 3\n", "unknown keys ['threshold']"),
        ("[tool.ane-verify\n", "not valid TOML"),
    ],
)
def test_broken_config_tables(finished_run, tmp_path, capsys, table, expected):
    _, out, _ = finished_run
    config = tmp_path / "gate.toml"
    config.write_text(table)
    _bad(["gate", str(out / "report.json"), "--config", str(config)], capsys, expected)


def test_debug_shows_the_traceback(tmp_path):
    path = tmp_path / "report.json"
    path.write_text("{not json")
    with pytest.raises(ValueError):
        main(["--debug", "gate", str(path)])


def test_device_command_says_whether_speedup_gates_can_run(capsys):
    assert main(["device", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["device"]["python"] == sys.version.split()[0]
    if sys.platform != "darwin":
        assert summary["speedup_gates"].startswith("not here:")


def test_bad_sizes_give_one_line_on_stderr_from_a_real_process(tiny_checkpoint, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "verification",
            "run",
            "--weights",
            str(tiny_checkpoint),
            "--seq-len",
            "0",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "ane-verify: error: --seq-len: expected a length of at least 1, got 0"
    ]
    assert not (tmp_path / "out").exists()


def test_module_entry_point_runs_without_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "verification", "gate", str(tmp_path / "absent.json")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 2
    assert result.stderr.strip().endswith("report: no file at " + repr(str(tmp_path / "absent.json")))


def test_reference_run_converts_its_baseline_with_the_same_inputs(tmp_path, monkeypatch, capsys):
    """`run reference` on a tiny torch.nn.Transformer: the baseline converts (torch.export, no fused fast
    path) with the optimized model's input names, and copies are judged per attention block (a decoder
    layer has two)."""
    from ane_models.reference import from_torch_transformer
    from verification.coreml import load
    from verification.release import model_zoo

    torch.manual_seed(0)
    transformer = torch.nn.Transformer(
        d_model=16,
        nhead=2,
        num_encoder_layers=1,
        num_decoder_layers=2,
        dim_feedforward=24,
        dropout=0.0,
        batch_first=True,
    ).eval()
    tiny = model_zoo.ModelPair(
        "reference",
        "reference",
        transformer,
        from_torch_transformer(transformer),
        10**6,
        architecture="torch.nn.Transformer",
    )
    monkeypatch.setattr(model_zoo, "embedded", lambda family: tiny)
    out = tmp_path / "out"

    code = main(
        [
            "run",
            "reference",
            "--seq-len",
            "8",
            "--batch-size",
            "2",
            "--out",
            str(out),
            "--quiet",
            "--with-baseline",
        ]
    )

    report = read(out / "report.json")
    assert code == 0, (out / "report.md").read_text()
    # --quiet: no stage lines, no estimate (in-process, coremltools' own bars may still be drawn: its tqdm
    # was imported before main() could switch it off; the subprocess tests check stderr whole)
    err = capsys.readouterr().err
    assert "[1/7]" not in err and "ane-verify:" not in err, err
    assert report["source"]["architecture"] == "torch.nn.Transformer"
    assert report["source"]["checkpoint"] == "seeded config" and report["source"]["seed"] == 0
    packages = {
        name: out / Path(path).name for name, path in report["artifacts"].items() if "mlpackage" in name
    }
    assert set(packages) == {"optimized_mlpackage", "baseline_mlpackage"}
    inputs = {
        name: [(d.name, tuple(d.type.multiArrayType.shape)) for d in load(path).get_spec().description.input]
        for name, path in packages.items()
    }
    assert inputs["baseline_mlpackage"] == inputs["optimized_mlpackage"]
    by_name = {c["name"]: c for c in report["checks"]}
    assert "did not convert" not in by_name["speedup_vs_baseline"]["reason"]
    assert by_name["readiness_copies_per_layer"]["value"] <= 1.0
    assert report["details"]["readiness"]["optimized"]["num_layers"] == 1 + 2 * 2
