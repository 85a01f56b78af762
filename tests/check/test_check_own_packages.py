"""``ane-verify check`` on packages ``ane-verify run`` made: the same figures as ``run``'s (within 0.1 dB),
a FAIL against the wrong reference, and every refusal in one line with nothing written."""

import json

import pytest
import torch
import transformers

from verification.release.cli import main

SEQ = 16


def _tiny(config_class, model_class, seed: int, path):
    """A tiny checkpoint with every parameter away from its init (norms, biases) and peaked attention."""
    torch.manual_seed(seed)
    config = config_class(
        vocab_size=120,
        max_position_embeddings=64,
        num_labels=3,
        **(
            {"dim": 32, "n_layers": 2, "n_heads": 4, "hidden_dim": 64}
            if config_class is transformers.DistilBertConfig
            else {
                "hidden_size": 32,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "intermediate_size": 64,
            }
        ),
    )
    model = model_class(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name or "layer_norm" in name:
                p.copy_((1 if name.endswith("weight") else 0) + 0.3 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            elif "q_lin" in name or "k_lin" in name or ".query." in name or ".key." in name:
                p.mul_(3.0)
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("check")
    cases = {
        "distilbert": _tiny(
            transformers.DistilBertConfig,
            transformers.DistilBertForSequenceClassification,
            1,
            root / "distilbert",
        ),
        "bert": _tiny(transformers.BertConfig, transformers.BertModel, 2, root / "bert"),
        "other": _tiny(
            transformers.DistilBertConfig, transformers.DistilBertForSequenceClassification, 3, root / "other"
        ),
    }
    runs = {}
    for name in ("distilbert", "bert"):
        out = root / f"run-{name}"
        code = main(
            ["run", "--weights", str(cases[name]), "--seq-len", str(SEQ), "--out", str(out), "--quiet"]
        )
        assert code == 0, f"run --weights {cases[name]} exited {code}"
        report = json.loads((out / "report.json").read_text())
        runs[name] = (report, next(out.glob("*.mlpackage")))
    return root, cases, runs


def _check(*args) -> int:
    return main(["check", *map(str, args), "--quiet"])


@pytest.mark.parametrize("name", ["distilbert", "bert"])
def test_check_agrees_with_run_on_its_own_package(made, name, tmp_path):
    root, cases, runs = made
    report, package = runs[name]
    assert _check(package, "--reference", cases[name], "--out", tmp_path / "c") == 0
    checked = json.loads((tmp_path / "c" / "report.json").read_text())
    ran = {c["name"]: c["value"] for c in report["checks"]}
    got = {c["name"]: c["value"] for c in checked["checks"]}
    # run judges the package's first output; check judges every output (the worst of them)
    first = checked["details"]["output_parity"][0]
    assert abs(first["psnr_db"] - ran["coreml_parity_psnr_db"]) < 0.1, (
        f"{name}: check {first} dB, run {ran['coreml_parity_psnr_db']} dB"
    )
    assert got["coreml_parity_psnr_db"] == min(r["psnr_db"] for r in checked["details"]["output_parity"])
    for rule in ("fp16_non_finite_ops", "readiness_copies_per_layer", "readiness_off_ane_ops"):
        assert got[rule] == ran[rule], f"{name} {rule}: check {got[rule]}, run {ran[rule]}"
    mapping = checked["details"]["mapping"]
    assert {m["role"] for m in mapping["inputs"]["main"]} >= {"input_ids", "attention_mask"}
    assert checked["config"]["package"].endswith(".mlpackage")


def test_the_wrong_reference_fails(made, tmp_path, capsys):
    root, cases, runs = made
    _, package = runs["distilbert"]
    assert _check(package, "--reference", cases["other"], "--out", tmp_path / "c") == 1
    checked = json.loads((tmp_path / "c" / "report.json").read_text())
    parity = next(c for c in checked["checks"] if c["name"] == "coreml_parity_psnr_db")
    assert parity["passed"] is False and parity["value"] < 40, parity


def test_an_output_whose_layout_cannot_be_told_needs_a_map(made, tmp_path, capsys):
    """BERT's last_hidden_state at S == C: (B, S, C) and (B, C, S) look the same; --map settles it."""
    root, cases, runs = made
    _, package = runs["bert"]  # (1, 32, 1, 16): the ANE layout, told by its shape
    assert _check(package, "--reference", cases["bert"], "--out", tmp_path / "a") == 0
    layout = json.loads((tmp_path / "a" / "report.json").read_text())["details"]["mapping"]["outputs"][0]
    assert layout["layout"] == "bc1s" and "by shape" in layout["how"]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["/nonexistent.mlpackage", "--reference", "distilbert"], "no such package"),
        (["{root}", "--reference", "distilbert"], "not an .mlpackage"),
        (["{package}", "--reference", "nothing-like-this"], "neither a model name"),
        (["{package}", "--reference", "distilbert", "--map", "{root}/missing.toml"], "--map"),
        (["{package}", "--reference", "distilbert", "--seq-len", "0"], "--seq-len"),
        (["{package}", "--reference", "distilbert", "--compress", "palettize:5"], "palettize"),
    ],
)
def test_refusals_before_anything_runs(made, args, expected, tmp_path, capsys):
    root, cases, runs = made
    _, package = runs["distilbert"]
    argv = [a.format(root=root, package=package) for a in args]
    assert _check(*argv, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "entry, named",
    [
        ('[outputs]\nnot_there = { reference = "logits" }\n', "not_there"),
        ('[states]\nkey_cache = "keyCache"\n', "keyCache"),
        ('[inputs]\ninput_ids = "causal_mask"\n', "causal_mask"),
        ('[functions]\nmain = "prefill"\n', "prefill"),
    ],
)
def test_a_map_naming_what_the_package_lacks_is_refused(made, entry, named, tmp_path, capsys):
    root, cases, runs = made
    _, package = runs["distilbert"]
    mapping = tmp_path / "map.toml"
    mapping.write_text(entry)
    assert _check(package, "--reference", cases["distilbert"], "--map", mapping, "--out", tmp_path / "o") == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("ane-verify: error:") and named in last, last
    assert not (tmp_path / "o").exists()


def test_a_map_settles_what_names_cannot(made, tmp_path):
    root, cases, runs = made
    _, package = runs["distilbert"]
    mapping = tmp_path / "map.toml"
    from verification.release.check.interface import load_interface

    (out,) = load_interface(package).function("main").outputs
    mapping.write_text(f'[outputs]\n{out.name} = {{ reference = "logits", layout = "bc" }}\n')
    assert _check(package, "--reference", cases["distilbert"], "--map", mapping, "--out", tmp_path / "o") == 0
    used = json.loads((tmp_path / "o" / "report.json").read_text())["details"]["mapping"]["outputs"][0]
    assert used == {"name": out.name, "reference": "logits", "layout": "bc", "how": "--map"}


def test_compression_found_against_what_was_declared(made, tmp_path):
    """A package palettized by coremltools.optimize directly: declared right, every weight is as
    declared; declared as int8, every compressed weight differs (and undeclared, nothing is judged)."""
    import coremltools as ct
    import coremltools.optimize.coreml as cto

    root, cases, runs = made
    _, package = runs["distilbert"]
    config = cto.OptimizationConfig(global_config=cto.OpPalettizerConfig(nbits=4, mode="kmeans"))
    compressed = tmp_path / "palettized.mlpackage"
    cto.palettize_weights(ct.models.MLModel(str(package), skip_model_load=True), config).save(str(compressed))

    def found(*extra):
        main(
            [
                "check",
                str(compressed),
                "--reference",
                str(cases["distilbert"]),
                *extra,
                "--out",
                str(tmp_path / "c"),
                "--quiet",
            ]
        )
        report = json.loads((tmp_path / "c" / "report.json").read_text())
        checks = {c["name"]: c for c in report["checks"]}
        return checks.get("compression_weights_not_as_declared"), report["details"]["compression_found"]

    check, details = found("--compress", "palettize:4")
    forms = {w["form"] for w in details["weights"]}
    assert "constexpr_lut_to_dense" in forms and check["value"] == 0 and check["passed"], (check, details)
    check, details = found("--compress", "quantize:int8")
    palettized = sum(w["form"] == "constexpr_lut_to_dense" for w in details["weights"])
    assert check["value"] == palettized > 0 and check["passed"] is False, check
    check, details = found()
    assert check is None and details["declared"] is None
