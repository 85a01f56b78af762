"""Every error the arguments decide is reported before anything is built, converted or written.

Each case runs ``ane-verify run`` with the build functions replaced by ones that fail the test: a refusal
that came after building (13 to 146 s on a laptop) would call them. Exit 2, one ``ane-verify: error``
line naming the option, the value and what is allowed, and no output directory.
"""

import json
import sys

import pytest
import torch
import transformers

import ane_models
from verification.release import model_zoo, pipeline, stages
from verification.release.cli import main


def _tiny_bert_config(**extra):
    return transformers.BertConfig(
        hidden_size=16,
        num_attention_heads=2,
        num_hidden_layers=1,
        intermediate_size=24,
        vocab_size=40,
        max_position_embeddings=32,
        **extra,
    )


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Tiny saved checkpoints: supported and unsupported heads, and one without a tokenizer."""
    root = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    made = {}
    for head in ("BertForSequenceClassification", "BertForPreTraining", "BertForNextSentencePrediction"):
        made[head] = root / head
        getattr(transformers, head)(_tiny_bert_config()).save_pretrained(made[head])
    made["gpt2"] = root / "gpt2"
    transformers.GPT2Model(
        transformers.GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=30)
    ).save_pretrained(made["gpt2"])
    made["xl"] = root / "xl"
    xl = transformers.XLMRobertaXLConfig(
        hidden_size=8, num_attention_heads=2, num_hidden_layers=1, intermediate_size=8, vocab_size=30
    )
    transformers.XLMRobertaXLModel(xl).save_pretrained(made["xl"])
    made["llama"] = root / "llama"
    llama = transformers.LlamaConfig(
        hidden_size=8,
        num_attention_heads=2,
        num_key_value_heads=1,
        num_hidden_layers=1,
        intermediate_size=8,
        vocab_size=30,
    )
    transformers.LlamaForCausalLM(llama).save_pretrained(made["llama"])
    return made


@pytest.fixture
def nothing_is_built(monkeypatch):
    """Building, loading or running any stage fails the test."""
    calls = []

    def forbidden(what):
        def call(*args, **kwargs):
            calls.append(what)
            raise AssertionError(f"{what} was called before the arguments were checked")

        return call

    monkeypatch.setattr(model_zoo, "embedded", forbidden("model_zoo.embedded"))
    monkeypatch.setattr(model_zoo, "from_directory", forbidden("model_zoo.from_directory"))
    monkeypatch.setattr(
        pipeline, "STAGE_FUNCTIONS", tuple(forbidden(f.__name__) for f in stages.STAGE_FUNCTIONS)
    )
    monkeypatch.setattr(pipeline, "prepare_output", forbidden("pipeline.prepare_output"))
    return calls


def _refused(args, capsys, expected, calls, tmp_path):
    out = tmp_path / "out"
    code = main(["run", *args, "--out", str(out)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("ane-verify: error: "), err
    assert expected in lines[0], lines[0]
    assert calls == [], calls
    assert not out.exists()
    return lines[0]


@pytest.mark.parametrize(
    "args,expected",
    [
        (["distilbert", "--seq-len", "0"], "--seq-len: expected a length of at least 1, got 0"),
        (["distilbert", "--seq-len", "-5"], "--seq-len: expected a length of at least 1, got -5"),
        (["bert", "--batch-size", "-1"], "--batch-size: expected at least 1, got -1"),
        (["roberta", "--batch-size", "0"], "--batch-size: expected at least 1, got 0"),
        (["distilbert", "--seq-len", "513"], "--seq-len: 513 exceeds the model's maximum of 512 positions"),
        (["roberta", "--seq-len", "513"], "--seq-len: 513 exceeds the model's maximum of 512 positions"),
        (
            ["gpt2"],
            "MODEL: invalid choice: 'gpt2' (expected one of distilbert, bert, roberta, reference, smollm2)",
        ),
        ([], "expected MODEL (one of distilbert, bert, roberta, reference) or --weights DIR"),
        (["bert", "--precision", "fp8"], "--precision: invalid choice: 'fp8' (expected one of fp16, fp32)"),
        (["bert", "--seq-len", "ten"], "--seq-len: invalid int value: 'ten'"),
        (["distilbert", "--text", "hello"], "--text: the embedded distilbert model has no tokenizer"),
        (["reference", "--text", "hello"], "torch.nn.Transformer takes no tokens"),
        (["distilbert", "--threshold", "nope=1"], "--threshold: unknown check name nope"),
    ],
)
def test_argument_errors_come_before_anything_is_built(args, expected, capsys, nothing_is_built, tmp_path):
    _refused(args, capsys, expected, nothing_is_built, tmp_path)


@pytest.mark.skipif(sys.platform == "darwin", reason="Core ML runs on macOS")
def test_coreml_backend_off_macos(capsys, nothing_is_built, tmp_path):
    _refused(
        ["distilbert", "--backend", "coreml"],
        capsys,
        "--backend coreml: Core ML predictions need macOS",
        nothing_is_built,
        tmp_path,
    )


def test_strict_where_the_speedup_cannot_be_measured(capsys, nothing_is_built, tmp_path):
    from verification.ondevice.device import detect, measurement_gate

    if measurement_gate(detect()) is None:
        pytest.skip("this device can measure the speed-up")
    line = _refused(
        ["distilbert", "--strict"],
        capsys,
        "--strict: the speed-up checks cannot be measured here",
        nothing_is_built,
        tmp_path,
    )
    assert "run without --strict" in line


@pytest.mark.parametrize("head", ["BertForPreTraining", "BertForNextSentencePrediction"])
def test_unsupported_heads_are_refused_by_name(head, checkpoints, capsys, nothing_is_built, tmp_path):
    """As ``ane_models.optimize`` refuses them: verifying the base model instead would say PASSED about a
    model that was not verified."""
    line = _refused(
        ["--weights", str(checkpoints[head])],
        capsys,
        f"--weights: {head} is not supported",
        nothing_is_built,
        tmp_path,
    )
    assert "supported bert heads: " + ", ".join(ane_models.supported_models()["bert"]) in line
    with pytest.raises(ane_models.UnsupportedModelError, match=head):
        ane_models.optimize(getattr(transformers, head)(_tiny_bert_config()))


def test_unsupported_model_types_are_refused(checkpoints, capsys, nothing_is_built, tmp_path):
    _refused(
        ["--weights", str(checkpoints["gpt2"])],
        capsys,
        "model_type 'gpt2' is not supported; supported: bert, distilbert, roberta, xlm-roberta",
        nothing_is_built,
        tmp_path,
    )
    _refused(
        ["--weights", str(checkpoints["xl"])],
        capsys,
        "model_type 'xlm-roberta-xl' is not supported (XLM-RoBERTa-XL normalizes before each sublayer",
        nothing_is_built,
        tmp_path,
    )


def test_the_encoder_pipeline_refuses_a_decoder_by_name(checkpoints):
    """``ane-verify run`` sends causal LMs to the decoder pipeline; the encoder pipeline never builds one."""
    with pytest.raises(
        model_zoo.ModelInputError, match="model_type 'llama' is a decoder; the encoder pipeline"
    ):
        model_zoo.inspect_directory(checkpoints["llama"])


def test_weight_directories_that_cannot_be_used(checkpoints, capsys, nothing_is_built, tmp_path):
    _refused(["--weights", str(tmp_path / "nope")], capsys, "is not a directory", nothing_is_built, tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    _refused(["--weights", str(broken)], capsys, "unreadable config.json", nothing_is_built, tmp_path)
    (broken / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    _refused(
        ["--weights", str(broken)],
        capsys,
        "no *.safetensors or pytorch_model.bin",
        nothing_is_built,
        tmp_path,
    )
    (broken / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{truncated")
    _refused(["--weights", str(broken)], capsys, "cannot load the weights", nothing_is_built, tmp_path)
    good = checkpoints["BertForSequenceClassification"]
    _refused(
        ["distilbert", "--weights", str(good)],
        capsys,
        "MODEL 'distilbert' does not match the checkpoint",
        nothing_is_built,
        tmp_path,
    )
    _refused(
        ["--weights", str(good), "--seq-len", "33"],
        capsys,
        "--seq-len: 33 exceeds the model's maximum of 32",
        nothing_is_built,
        tmp_path,
    )


def test_text_needs_a_tokenizer_and_a_matching_batch(checkpoints, capsys, nothing_is_built, tmp_path):
    from verification.checkpoints import minilm_directory

    no_tokenizer = str(checkpoints["BertForSequenceClassification"])
    _refused(
        ["--weights", no_tokenizer, "--seq-len", "8", "--text", "hi"],
        capsys,
        "has no tokenizer (no tokenizer.json or vocab.txt)",
        nothing_is_built,
        tmp_path,
    )
    minilm = str(minilm_directory())
    _refused(
        ["--weights", minilm, "--text", "a", "--text", "b", "--batch-size", "3"],
        capsys,
        "--batch-size: 3 does not match the 2 --text inputs",
        nothing_is_built,
        tmp_path,
    )
    _refused(
        ["--weights", minilm, "--text", "   "],
        capsys,
        "--text 1: expected some text",
        nothing_is_built,
        tmp_path,
    )
    long = " ".join(["word"] * 40)
    _refused(
        ["--weights", minilm, "--seq-len", "16", "--text", "short", "--text", long],
        capsys,
        "--text 2 ('word word",
        nothing_is_built,
        tmp_path,
    )


def test_output_directory_that_cannot_be_used(tmp_path, capsys, nothing_is_built):
    a_file = tmp_path / "file"
    a_file.write_text("keep me")
    code = main(["run", "distilbert", "--out", str(a_file)])
    assert code == 2 and "--out: " in capsys.readouterr().err and a_file.read_text() == "keep me"
    assert nothing_is_built == []


def test_the_checkpoint_maximum_matches_what_ane_models_builds(checkpoints):
    """preflight reads the longest sequence from config.json; ane_models computes it when it builds."""
    for family, head in [
        ("bert", "BertModel"),
        ("roberta", "RobertaModel"),
        ("xlm-roberta", "XLMRobertaModel"),
        ("distilbert", "DistilBertModel"),
    ]:
        config = transformers.AutoConfig.for_model(
            family,
            vocab_size=30,
            max_position_embeddings=40,
            pad_token_id=3,
            **(
                {"dim": 8, "n_heads": 2, "n_layers": 1, "hidden_dim": 8}
                if family == "distilbert"
                else {
                    "hidden_size": 8,
                    "num_attention_heads": 2,
                    "num_hidden_layers": 1,
                    "intermediate_size": 8,
                }
            ),
        )
        built = ane_models.optimize(getattr(transformers, head)(config).eval())
        assert model_zoo.max_positions(family, config.to_dict()) == built.ane_config.max_sequence_length, (
            family
        )
    for family in ("distilbert", "bert", "roberta"):
        config = model_zoo._embedded_config(family)
        positions = model_zoo.max_positions(family, config.to_dict())
        assert positions == model_zoo.embedded_max_positions(family), family


def test_the_exact_maximum_sequence_length_is_accepted(checkpoints, tmp_path):
    """--seq-len equal to the model's maximum fits (only one more is refused): the plan's check, and the
    build stage's ``check_sizes`` against the built pair's maximum."""
    from verification.release import preflight
    from verification.release.context import RunOptions

    cases = [
        ("distilbert", None, 512),
        ("roberta", None, 512),
        (None, checkpoints["BertForSequenceClassification"], 32),
    ]
    for model, weights, longest in cases:
        options = RunOptions(model=model, weights=weights and str(weights), out=tmp_path / "o")
        for seq_len in (longest - 1, longest):
            options.seq_len = seq_len
            try:
                result = preflight.plan(options)
            except model_zoo.ModelInputError as error:
                raise AssertionError(f"{model or weights}: --seq-len {seq_len} refused: {error}") from None
            assert result.max_seq_len == longest, (model, weights, result.max_seq_len)
        options.seq_len = longest + 1
        with pytest.raises(model_zoo.ModelInputError, match=f"{longest + 1} exceeds the model's maximum"):
            preflight.plan(options)
    pair = model_zoo.ModelPair("tiny", "bert", baseline=None, optimized=None, max_seq_len=32)
    for seq_len in (1, 31, 32):
        try:
            model_zoo.check_sizes(pair, seq_len, 1)
        except model_zoo.ModelInputError as error:
            raise AssertionError(
                f"check_sizes: --seq-len {seq_len} with a maximum of 32 refused: {error}"
            ) from None
    with pytest.raises(model_zoo.ModelInputError, match="33 exceeds the model's maximum of 32"):
        model_zoo.check_sizes(pair, 33, 1)
