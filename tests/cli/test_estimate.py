"""The estimate said before a run: close to the runs it was fitted to, a warning only for big runs."""

import pytest

from verification.release import estimate
from verification.release.decoder_args import QWEN3_0_6B


def test_the_estimate_matches_the_runs_it_was_fitted_to():
    """docs/run-estimates.md: DistilBERT-base at the defaults (2.65 GB peak, ~27 s on a quiet machine)
    and at --seq-len 512 --batch-size 8 (12 min, 9.9 GB)."""
    sizes = estimate.EMBEDDED_SIZES["distilbert"]
    default = estimate.estimate("distilbert", sizes, 128, 1)
    big = estimate.estimate("distilbert", sizes, 512, 8)
    assert default.bytes == pytest.approx(2.65e9, rel=0.15) and 20 < default.seconds < 45
    assert big.bytes == pytest.approx(9.9e9, rel=0.15) and big.seconds == pytest.approx(720, rel=0.15)
    assert not default.large and big.large
    assert "min" in big.describe() and "GB" in big.describe()


@pytest.mark.parametrize("family", sorted(estimate.EMBEDDED_SIZES))
def test_no_family_warns_at_the_defaults_and_every_one_grows_with_the_sizes(family):
    sizes = estimate.EMBEDDED_SIZES[family]
    default = estimate.estimate(family, sizes, 128, 1)
    assert not default.large, default.describe()
    longer, wider = estimate.estimate(family, sizes, 256, 1), estimate.estimate(family, sizes, 128, 2)
    assert longer.seconds > default.seconds and longer.bytes > default.bytes
    assert wider.seconds > default.seconds and wider.bytes > default.bytes


def test_the_embedded_sizes_are_transformers_defaults():
    import transformers

    for family, config in [
        ("distilbert", transformers.DistilBertConfig()),
        ("bert", transformers.BertConfig()),
        ("roberta", transformers.RobertaConfig(vocab_size=50265)),
    ]:
        expected = config.to_dict()
        for key, value in estimate.EMBEDDED_SIZES[family].items():
            assert expected[key] == value, (family, key)


# ---------------------------------------------------------------- causal LMs


@pytest.mark.parametrize(
    "family, sizes",
    [
        (
            "llama",
            dict(
                hidden_size=48,
                intermediate_size=80,
                num_hidden_layers=3,
                num_attention_heads=6,
                num_key_value_heads=2,
                vocab_size=97,
                tie_word_embeddings=True,
            ),
        ),
        (
            "llama",
            dict(
                hidden_size=32,
                intermediate_size=72,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=4,
                vocab_size=61,
                tie_word_embeddings=False,
            ),
        ),
        (
            "qwen3",
            dict(
                hidden_size=40,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                head_dim=24,
                vocab_size=53,
                tie_word_embeddings=True,
            ),
        ),
    ],
)
def test_decoder_parameters_count_what_transformers_builds(family, sizes):
    """Tied and untied heads, grouped kv heads, a head_dim that is not hidden / heads, Qwen3's q/k norms."""
    import transformers

    cls = transformers.Qwen3Config if family == "qwen3" else transformers.LlamaConfig
    config = cls(**sizes)
    model = transformers.AutoModelForCausalLM.from_config(config)
    built = sum(p.numel() for p in model.parameters())  # tied weights are one Parameter
    assert estimate.decoder_parameters(config.to_dict()) == built, (family, sizes)


def test_the_decoder_estimate_matches_its_runs_and_warns_for_a_0_6b_model():
    """docs/run-estimates.md (benchmarks/bench_scale.py): 134.5M parameters, 268 s and 3.16 GB; 596M, 958 s
    and 9.68 GB. The published Qwen3-0.6B config: over 5 minutes, said as a warning."""
    small, larger = estimate.decoder_estimate(134_515_008), estimate.decoder_estimate(596_049_920)
    assert small.seconds == pytest.approx(268, rel=0.1) and small.bytes == pytest.approx(3.16e9, rel=0.1)
    assert larger.seconds == pytest.approx(958, rel=0.1) and larger.bytes == pytest.approx(9.68e9, rel=0.1)
    qwen3_0_6b = dict(QWEN3_0_6B, model_type="qwen3")
    parameters = estimate.decoder_parameters(qwen3_0_6b)
    assert parameters == pytest.approx(596e6, rel=0.01)  # Qwen3-0.6B: 0.6B with its tied embedding
    big = estimate.decoder_estimate(parameters)
    assert big.bytes == pytest.approx(9.68e9, rel=0.1) and big.seconds > estimate.SLOW_SECONDS, big.describe()


def test_run_of_a_causal_lm_says_its_estimate_before_loading_anything(tmp_path, capsys):
    """A checkpoint whose config is the 0.6B model's and whose weights file holds nothing: the estimate
    (and its warning) is said from the config alone, then the load refuses the missing weights."""
    import json

    from verification.release import cli

    weights = tmp_path / "qwen3"
    weights.mkdir()
    config = dict(QWEN3_0_6B, model_type="qwen3", architectures=["Qwen3ForCausalLM"])
    (weights / "config.json").write_text(json.dumps(config))
    (weights / "model.safetensors").write_bytes((2).to_bytes(8, "little") + b"{}")
    code = cli.main(["run", "--weights", str(weights), "--out", str(tmp_path / "out"), "--no-cache"])
    err = capsys.readouterr().err
    assert "this run will take long: 596M parameters: about" in err, err
    assert "lacks" in err and "of the model's weights" in err, err
    assert code == 2 and not (tmp_path / "out").exists()
