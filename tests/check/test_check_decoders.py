"""``ane-verify check`` of causal LM packages: a package ``run`` made gets ``run``'s figures back, the wrong
reference fails, and a package check cannot drive is refused before anything runs."""

import json

import pytest
import torch
import transformers

from verification.release.cli import main

ARGS = ["--new-tokens", "8"]


def _tiny_llama(seed: int, path):
    """Norms away from 1, peaked attention, and a sharpened head so most positions are not near-ties."""
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        hidden_size=64,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_hidden_layers=2,
        intermediate_size=128,
        vocab_size=200,
        max_position_embeddings=128,
    )
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif "q_proj" in name or "k_proj" in name:
                p.mul_(3.0)
        model.lm_head.weight.mul_(40.0)
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("check-decoders")
    good, other = _tiny_llama(5, root / "llama"), _tiny_llama(6, root / "other")
    out = root / "run"
    code = main(
        [
            "run",
            "--weights",
            str(good),
            "--prefill-len",
            "8",
            "--context",
            "32",
            *ARGS,
            "--out",
            str(out),
            "--quiet",
        ]
    )
    report = json.loads((out / "report.json").read_text())
    return good, other, report, next(out.glob("*.mlpackage")), code


def _check(*args) -> int:
    return main(["check", *map(str, args), *ARGS, "--quiet"])


def test_check_gets_runs_figures_back(made, tmp_path):
    good, _, report, package, run_code = made
    code = _check(package, "--reference", good, "--out", tmp_path / "c")
    checked = json.loads((tmp_path / "c" / "report.json").read_text())
    ran = {c["name"]: c for c in report["checks"]}
    got = {c["name"]: c for c in checked["checks"]}
    for name in (
        "decoder_step_psnr_db",
        "decoder_prefill_vs_sequential_psnr_db",
        "decoder_argmax_agreement",
        "decoder_max_kl_divergence",
        "fp16_non_finite_ops",
    ):
        assert got[name]["value"] == pytest.approx(ran[name]["value"], abs=0.1), (name, got[name], ran[name])
    assert code == run_code, f"check exited {code}, run {run_code}"
    mapping = checked["details"]["mapping"]
    assert mapping["functions"] == {"prefill": "prefill", "decode": "decode"}
    assert (
        checked["details"]["decoder"]["generated_tokens"] == report["details"]["decoder"]["generated_tokens"]
    )
    # placement and tokens per second need a Mac: recorded, not measured, each with the reason
    for name in ("ane_op_share", "prefill_tokens_per_second", "decode_tokens_per_second"):
        assert got[name]["measured"] is False and got[name]["reason"], got[name]


def test_the_wrong_reference_fails(made, tmp_path):
    _, other, _, package, _ = made
    assert _check(package, "--reference", other, "--out", tmp_path / "c") == 1
    checked = json.loads((tmp_path / "c" / "report.json").read_text())
    step = next(c for c in checked["checks"] if c["name"] == "decoder_step_psnr_db")
    assert step["passed"] is False and step["value"] < 20, step


def test_an_encoder_package_against_a_causal_lm_is_refused(made, tmp_path, capsys):
    good, _, _, _, _ = made
    torch.manual_seed(0)
    bert = transformers.BertConfig(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        vocab_size=50,
        max_position_embeddings=32,
    )
    transformers.BertForSequenceClassification(bert).save_pretrained(tmp_path / "bert")
    assert main(
        [
            "run",
            "--weights",
            str(tmp_path / "bert"),
            "--seq-len",
            "8",
            "--out",
            str(tmp_path / "r"),
            "--quiet",
        ]
    ) in (0, 1)
    package = next((tmp_path / "r").glob("*.mlpackage"))
    assert _check(package, "--reference", good, "--out", tmp_path / "c") == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "declares no state" in last, last
    assert not (tmp_path / "c").exists()


def test_a_decode_function_the_map_names_must_exist(made, tmp_path, capsys):
    good, _, _, package, _ = made
    mapping = tmp_path / "map.toml"
    mapping.write_text('[functions]\nprefill = "prefill"\ndecode = "step"\n')
    assert _check(package, "--reference", good, "--map", mapping, "--out", tmp_path / "c") == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "'step'" in last and "prefill" in last, last
