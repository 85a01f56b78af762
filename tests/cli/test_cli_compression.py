"""ane-verify run --compress and ane-verify sensitivity on a tiny local checkpoint (weights over
coremltools' 2048-element threshold): reports, gates, and bad input refused before converting (exit 2,
nothing written)."""

import json
from pathlib import Path

import pytest
import torch
import transformers

from verification.release.cli import main
from verification.release.reports.schema import read

pytestmark = pytest.mark.coreml


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    config = transformers.BertConfig(
        hidden_size=64,
        num_attention_heads=4,
        num_hidden_layers=2,
        intermediate_size=128,
        vocab_size=97,
        max_position_embeddings=64,
        num_labels=3,
    )
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("checkpoint") / "tiny-bert-64"
    transformers.BertForSequenceClassification(config).save_pretrained(path, safe_serialization=True)
    return path


def _run(checkpoint, out, *extra):
    return main(["run", "--weights", str(checkpoint), "--seq-len", "16", "--out", str(out), *extra])


def test_compressed_run_reports_the_three_way_split_and_gates(checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    code = _run(checkpoint, out, "--compress", "quantize:int8")
    assert code in (0, 1)
    report = read(out / "report.json")
    checks = {c["name"]: c for c in report["checks"]}
    # every row names where its threshold came from, the compression rows too
    assert all(c.get("threshold_source") for c in report["checks"]), [
        c["name"] for c in report["checks"] if not c.get("threshold_source")
    ]
    assert {checks[n]["threshold_source"] for n in checks if n.startswith("compression_")} == {"default"}
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("compression_")]
    assert len(printed) == 4 and all(line.endswith("default") for line in printed), printed
    for name in ("compression_psnr_db", "compression_program_vs_fake_psnr_db", "compression_top1_agreement"):
        assert checks[name]["measured"], checks[name]
    assert checks["compression_psnr_db"]["threshold"] == 55.0  # 8-bit weights: the published > 55 dB
    assert checks["compression_program_vs_fake_psnr_db"]["passed"], checks[
        "compression_program_vs_fake_psnr_db"
    ]
    assert checks["compression_bits_per_weight"]["passed"]
    details = report["details"]["compression"]
    assert details["recipe"]["default"] == "quantize:int8" and details["deployment_target"] == "iOS18"
    assert details["size_after"]["stored_bytes"] < details["size_before"]["stored_bytes"] / 1.9
    assert details["forms"] == ["constexpr_blockwise_shift_scale"]
    assert (out / report["artifacts"]["compressed_mlpackage"]).is_dir()
    html = (out / "report.html").read_text()
    assert "Compression: quantize:int8" in html and "fake-compressed torch" in html
    # a threshold override reaches the compression gates like any other
    code = main(["gate", str(out / "report.json"), "--threshold", "compression_psnr_db=1"])
    assert code in (0, 1)


@pytest.mark.parametrize(
    "extra,expected",
    [
        (["--compress", "palettize:5"], "palettize bit width 5 is not one of (1, 2, 3, 4, 6, 8)"),
        (
            ["--compress", "quantize:int4:block=32", "--deployment-target", "iOS17"],
            "needs deployment target iOS18",
        ),
        (["--compress", "recipe=/no/such/recipe.toml"], "cannot read the recipe"),
        (["--compress", "palettize:4:group=48"], "group size 48 does not divide the"),
        (["--compress", "quantize:int4:block=48"], "block size 48 does not divide the 64 input channels"),
    ],
)
def test_bad_compression_options_exit_2_and_write_nothing(checkpoint, tmp_path, capsys, extra, expected):
    out = tmp_path / "out"
    code = _run(checkpoint, out, *extra)
    err = capsys.readouterr().err
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("ane-verify:")]
    assert len(errors) == 1 and expected in errors[0] and "Traceback" not in err, err
    assert not out.exists()


def test_a_recipe_naming_a_missing_module_is_refused_before_converting(
    checkpoint, tmp_path, capsys, monkeypatch
):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        '[compression]\ndefault = "quantize:int8"\n[compression.layers]\n"backbone.layers.9.ffn" = "none"\n'
    )
    import verification.coreml as coreml

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted before refusing the recipe")

    monkeypatch.setattr(coreml, "convert", no_conversion)
    out = tmp_path / "out"
    assert _run(checkpoint, out, "--compress", f"recipe={recipe}") == 2
    assert "recipe layer 'backbone.layers.9.ffn': the model has no such module" in capsys.readouterr().err
    assert not out.exists()


def _module_paths(checkpoint) -> set:
    from verification.release import model_zoo

    return {name for name, _ in model_zoo.from_directory(checkpoint).optimized.named_modules()}


def test_sensitivity_names_layers_and_its_recipe_runs_as_written(checkpoint, tmp_path, capsys):
    out = tmp_path / "sens"
    args = ["sensitivity", "--weights", str(checkpoint), "--compress-config", "palettize:4:mode=uniform"]
    code = main([*args, "--seq-len", "16", "--target-psnr", "30", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed  # seeded: 2 layers at 8 bits meet 30 dB (39.4 dB measured)
    data = json.loads((out / "sensitivity.json").read_text())
    costs = [c["cost_db"] for c in data["layers"]]
    assert costs == sorted(costs, reverse=True) and len(costs) == 14, costs
    names, modules = [c["layer"] for c in data["layers"]], _module_paths(checkpoint)
    assert set(names) <= modules, sorted(set(names) - modules)  # module paths, never MIL op names
    assert "backbone.layers.0.self_attn.q_proj" in names  # not its attention's scope
    mixed = data["mixed_bit"]
    assert mixed["fallback"] == "palettize:8:mode=uniform" and mixed["met"]
    assert mixed["all_config_bytes"] <= mixed["stored_bytes"] <= mixed["all_fallback_bytes"]
    assert (
        list(mixed["recipe"]["layers"]) == mixed["fallback_layers"] == names[: len(mixed["fallback_layers"])]
    )
    assert mixed["layer_configs"] == {
        n: "palettize:8:mode=uniform" if n in mixed["fallback_layers"] else "palettize:4:mode=uniform"
        for n in names
    }
    html = (out / "sensitivity.html").read_text()
    assert "<svg" in html and "backbone.layers.0.self_attn.q_proj" in html and "mixed recipe" in html
    recipe = out / "mixed_recipe.toml"
    assert "op_" not in recipe.read_text() and f"--compress recipe={recipe}" in printed
    # the recipe as it is, through run
    code = _run(checkpoint, tmp_path / "run", "--compress", f"recipe={recipe}")
    assert code in (0, 1)
    details = read(tmp_path / "run" / "report.json")["details"]["compression"]
    assert details["recipe"]["layers"] == mixed["recipe"]["layers"], details["recipe"]
    # the same weights at the same configs: what sensitivity predicted the recipe stores, run stores
    stored = details["size_after"]["stored_bytes"]
    assert abs(stored - mixed["stored_bytes"]) <= 0.01 * stored, (stored, mixed["stored_bytes"])


def test_sensitivity_by_layer_and_the_deprecated_config_spelling(checkpoint, tmp_path, capsys):
    out = tmp_path / "sens"
    args = ["sensitivity", "--weights", str(checkpoint), "--config", "palettize:4:mode=uniform"]
    code = main([*args, "--seq-len", "16", "--by", "layer", "--target-psnr", "30", "--out", str(out)])
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "deprecated" in line]
    assert len(warnings) == 1 and "use --compress-config" in warnings[0], captured.err
    assert code in (0, 1)
    data = json.loads((out / "sensitivity.json").read_text())
    names = [c["layer"] for c in data["layers"]]
    assert {"backbone.layers.0", "backbone.layers.1"} <= set(names) <= _module_paths(checkpoint), names
    mixed = data["mixed_bit"]
    assert (code == 0) == mixed["met"]
    assert set(mixed["recipe"]["layers"]) == set(mixed["fallback_layers"])  # a layer covers its weights
    assert "mixed-bit: target 30.0 dB" in captured.out


def test_sensitivity_refuses_a_bad_config(checkpoint, tmp_path, capsys):
    out = tmp_path / "sens"
    code = main(
        ["sensitivity", "--weights", str(checkpoint), "--compress-config", "palettize:7", "--out", str(out)]
    )
    assert code == 2 and "--compress-config: palettize bit width 7" in capsys.readouterr().err
    assert not out.exists()
    code = main(["sensitivity", "--weights", str(checkpoint), "--out", str(out)])
    assert code == 2 and "--compress-config: required" in capsys.readouterr().err
