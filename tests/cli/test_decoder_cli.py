"""``ane-verify run smollm2``: the decoder pipeline end to end on SmolLM2's architecture shrunk to 2 layers
(the seeded model's config is patched; the pipeline is the real one), and its bad input."""

from __future__ import annotations

import json

import pytest

from verification.release import cli, decoder_zoo

TINY = dict(
    decoder_zoo.SMOLLM2_135M,
    vocab_size=160,
    hidden_size=48,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=3,
    num_key_value_heads=1,
    max_position_embeddings=128,
)
ARGS = ["run", "smollm2", "--backend", "mil", "--prefill-len", "8", "--context", "24", "--new-tokens", "6"]


@pytest.fixture
def tiny_smollm2(monkeypatch):
    monkeypatch.setattr(decoder_zoo, "SMOLLM2_135M", TINY)


def test_run_smollm2_writes_the_reports_with_every_step(tiny_smollm2, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main([*ARGS, "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    report = json.loads((out / "report.json").read_text())
    checks = {c["name"]: c for c in report["checks"]}
    for name in (
        "torch_parity_psnr_db",
        "decoder_step_psnr_db",
        "decoder_argmax_agreement",
        "decoder_max_kl_divergence",
        "decoder_prefill_vs_sequential_psnr_db",
        "fp16_non_finite_ops",
        "fp16_unrepresentable_constants",
    ):
        assert checks[name]["measured"] and checks[name]["passed"], checks[name]
    assert checks["ane_op_share"]["measured"] is False and checks["ane_op_share"]["reason"]
    # coremltools' default rsqrt epsilon in both functions: listed, not counted
    assert report["details"]["fp16_unrepresentable_constants"] == []
    assert report["details"]["hazards_text"].count("[converter_epsilon]") == 2 * (2 * 2 + 1)
    for name in ("prefill_tokens_per_second", "decode_tokens_per_second"):
        check = checks[name]
        assert check["measured"] is False and check["reason"].startswith("Core ML runs only on macOS"), check
        assert "backend mil" in check["reason"] and "informational" in check["metric"], check
    source = report["source"]
    assert source["model"] == {
        "class": "LlamaForCausalLM",
        "model_type": "llama",
        "layers": 2,
        "hidden": 48,
        "heads": 3,
        "kv_heads": 1,
        "vocab": 160,
    }, source
    assert (
        source["weights"] is None and source["seed"] == 0 and source["checkpoint"].startswith("seeded config")
    )
    assert source["prompt"] == {
        "source": "seed",
        "seed": 0,
        "tokens": 8,
        "prefill_len": 8,
        "context": 24,
        "new_tokens": 6,
    }, source
    assert "prefill length 8, context 24, 6 new tokens" in source["inputs"], source
    markdown = (out / "report.md").read_text()
    for text in (
        source["architecture"],
        source["inputs"],
        "fp16_unrepresentable_constants",
        "Tokens per second",
    ):
        assert text in markdown, text
    assert "LlamaForCausalLM (model_type llama): 2 layers" in printed and "random token ids" in printed
    assert "tokens per second: not measured (Core ML runs only on macOS" in printed
    decoder = report["details"]["decoder"]
    # Seeded weights: every position is a near-tie and the answer one repeated token; the token checks
    # say they had nothing to judge instead of passing, and the report says the answer is degenerate.
    ties = decoder["near_tie_positions"]
    assert len(decoder["top2_gap"]) == 6 and all(g < 0.1 for g in decoder["top2_gap"])
    assert ties == list(range(6))
    for name in ("decoder_confident_token_agreement", "decoder_token_agreement"):
        assert checks[name]["measured"] is False and "near-tie" in checks[name]["reason"], checks[name]
    assert decoder["degenerate"] is True and "degenerate" in printed
    assert len(decoder["step_psnr_db"]) == 6 and len(decoder["generated_tokens"]) == 6
    assert set(report["details"]["readiness_per_function"]) == {"prefill", "decode"}
    stage_peaks = [s["peak_mb"] for s in report["details"]["stages"]]
    assert len(stage_peaks) == 7 and report["details"]["memory"]["peak_mb"] == max(stage_peaks), report
    html = (out / "report.html").read_text()
    assert "logits PSNR per step" in html and html.count("<circle") == 6
    assert "2 layers, hidden 48, 3 heads, 1 kv heads, vocab 160" in html and "Tokens per second" in html
    assert (out / "smollm2_state_fp16.mlpackage" / "Manifest.json").is_file()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--prefill-len", "30"], "--prefill-len: expected less than --context 24, got 30"),
        (["--new-tokens", "40"], "--new-tokens: expected prefill length + new tokens - 1 <= --context 24"),
        (["--weights", "/nonexistent/model.gguf"], "--weights: no such file or directory"),
        (["--text", "hello"], "--text: the seeded smollm2 has no tokenizer"),
        (["--text", "a", "--text", "b"], "--text: a causal LM run takes one prompt, got 2"),
    ],
)
def test_bad_decoder_options_exit_2_and_write_nothing(tiny_smollm2, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    code = cli.main([*ARGS, *extra, "--out", str(out)])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_decode_step_that_writes_the_cache_one_slot_late_fails_the_run(tiny_smollm2, monkeypatch, tmp_path):
    """Planted defect: the decode step's cache write lands one slot past its position (the prefill's write
    is right), so every decode step attends to an empty slot instead of its own token."""
    from ane_layers.kv_cache import KVCache

    write = KVCache.write

    def one_slot_late(self, layer, keys, values, position):
        return write(self, layer, keys, values, position + 1 if keys.shape[3] == 1 else position)

    monkeypatch.setattr(KVCache, "write", one_slot_late)
    out = tmp_path / "out"
    assert cli.main([*ARGS, "--out", str(out), "--quiet"]) == 1
    checks = {c["name"]: c for c in json.loads((out / "report.json").read_text())["checks"]}
    failed = sorted(name for name, c in checks.items() if c["passed"] is False)
    assert "decoder_step_psnr_db" in failed, {n: (c["value"], c["threshold"]) for n, c in checks.items()}


def test_a_second_decoder_run_is_served_by_the_cache(tiny_smollm2, tmp_path, monkeypatch):
    from verification.coreml import program_cache

    monkeypatch.setenv(program_cache.ENV, str(tmp_path / "cache"))
    reports = []
    for name in ("first", "second"):
        assert cli.main([*ARGS, "--out", str(tmp_path / name), "--quiet"]) == 0
        reports.append(json.loads((tmp_path / name / "report.json").read_text()))
    caches = [r["details"]["program_cache"] for r in reports]
    # prefill and decode: two conversions, both kept, both served the second time
    assert [(c["hits"], c["misses"]) for c in caches] == [(0, 2), (2, 0)], caches
    steps = [r["details"]["decoder"]["step_psnr_db"] for r in reports]
    assert steps[0] == steps[1], steps
