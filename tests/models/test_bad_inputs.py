"""Bad models, bad checkpoints and bad inputs fail loudly, with the numbers; nothing trains silently."""

from __future__ import annotations

import pytest
import torch
import transformers
from model_strategies import hf_class

import ane_models
from ane_layers import LayerNormANE
from ane_models import CheckpointMismatchError, TrainingModeWarning, UnsupportedModelError

TINY = dict(num_attention_heads=2, num_hidden_layers=1, intermediate_size=16, vocab_size=50,
            max_position_embeddings=16, attn_implementation="eager")


def tiny_config(family: str, **overrides):
    if family == "distilbert":
        options = dict(dim=8, n_heads=2, n_layers=1, hidden_dim=16, vocab_size=50, max_position_embeddings=16,
                       attn_implementation="eager")
        return transformers.DistilBertConfig(**{**options, **overrides})
    config_class = transformers.BertConfig if family == "bert" else transformers.RobertaConfig
    return config_class(hidden_size=8, **{**TINY, **overrides})


def tiny_model(family: str, head: str = "Model", **overrides):
    torch.manual_seed(0)
    return hf_class(family, head)(tiny_config(family, **overrides)).eval()


def test_every_family_and_head_is_supported():
    table = ane_models.supported_models()
    assert sorted(table) == ["bert", "distilbert", "llama", "qwen2", "qwen3", "roberta", "xlm-roberta"]
    for family in ("bert", "distilbert", "roberta", "xlm-roberta"):
        assert len(table[family]) == 6
    for family, prefix in (("llama", "Llama"), ("qwen2", "Qwen2"), ("qwen3", "Qwen3")):
        assert table[family] == [f"{prefix}Model", f"{prefix}ForCausalLM"]  # decoders: tests/decoders
    # XLM-RoBERTa is RoBERTa's architecture: the same heads under XLMRoberta* names
    assert table["xlm-roberta"] == [name.replace("Roberta", "XLMRoberta", 1) for name in table["roberta"]]


def test_xlm_roberta_is_built_as_itself():
    config = transformers.XLMRobertaConfig(hidden_size=8, **TINY)
    torch.manual_seed(0)
    ane = ane_models.optimize(transformers.XLMRobertaForTokenClassification(config).eval())
    assert (ane.ane_config.model_type, ane.ane_config.architecture) == (
        "xlm-roberta", "XLMRobertaForTokenClassification")


def test_xlm_roberta_xl_is_refused_by_name_with_the_difference():
    config = transformers.XLMRobertaXLConfig(hidden_size=8, **TINY)
    with pytest.raises(UnsupportedModelError, match="XLMRobertaXLModel.*xlm-roberta-xl.*pre-LN"):
        ane_models.optimize(transformers.XLMRobertaXLModel(config).eval())


def test_unsupported_model_type_lists_what_is_supported():
    gpt2 = transformers.GPT2Model(transformers.GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=30,
                                                          n_positions=16))
    with pytest.raises(UnsupportedModelError, match="'gpt2'") as info:
        ane_models.optimize(gpt2)
    for name in ("DistilBertForMaskedLM", "BertForMultipleChoice", "RobertaForQuestionAnswering"):
        assert name in str(info.value)


@pytest.mark.parametrize("head", ["ForNextSentencePrediction", "ForPreTraining", "LMHeadModel"])
def test_unsupported_head_lists_what_is_supported(head):
    name = "BertLMHeadModel" if head == "LMHeadModel" else f"Bert{head}"
    model = getattr(transformers, name)(tiny_config("bert", is_decoder=head == "LMHeadModel"))
    expected = f"unsupported model {name}.*supported: .*BertForSequenceClassification"
    with pytest.raises(UnsupportedModelError, match=expected):
        ane_models.optimize(model)


def test_not_a_transformers_model_is_rejected():
    with pytest.raises(UnsupportedModelError, match="expected a transformers model instance.*got Linear"):
        ane_models.optimize(torch.nn.Linear(2, 2))


@pytest.mark.parametrize(("option", "value"), [("is_decoder", True), ("hidden_act", "silu")])
def test_unsupported_config_options_are_named(option, value):
    with pytest.raises(ValueError, match=f"{option}={value!r}"):
        ane_models.optimize(tiny_model("bert", **{option: value}))


def test_missing_checkpoint_keys_are_named():
    model = tiny_model("bert", "ForSequenceClassification")
    model.classifier.register_parameter("bias", None)  # a checkpoint without the classifier bias
    with pytest.raises(CheckpointMismatchError, match=r"missing keys.*'classifier\.bias'"):
        ane_models.optimize(model)


def test_unexpected_checkpoint_keys_are_named():
    model = tiny_model("distilbert", "ForQuestionAnswering")
    layer = model.distilbert.transformer.layer[0].attention
    layer.register_parameter("relative_bias", torch.nn.Parameter(torch.zeros(3)))
    with pytest.raises(CheckpointMismatchError,
                       match=r"unexpected keys.*distilbert\.transformer\.layer\.0\.attention\.relative_bias"):
        ane_models.optimize(model)


@pytest.mark.parametrize(("family", "longest"), [("distilbert", 16), ("bert", 16), ("roberta", 14)])
def test_sequences_longer_than_the_positions_raise_with_the_numbers(family, longest):
    ane = ane_models.optimize(tiny_model(family))
    assert ane.ane_config.max_sequence_length == longest
    ane(torch.randint(2, 50, (1, longest)))  # the longest accepted sequence runs
    with pytest.raises(ValueError, match=f"sequence length {longest + 1}.*16 position embeddings"):
        ane(torch.randint(2, 50, (1, longest + 1)))


@pytest.mark.parametrize("family", ["distilbert", "bert", "roberta"])
@pytest.mark.parametrize("bad_id", [50, 1000, -1])
def test_ids_outside_the_vocabulary_raise_with_the_numbers(family, bad_id):
    ane = ane_models.optimize(tiny_model(family, "ForMaskedLM"))
    ids = torch.tensor([[3, 4, bad_id, 5]])
    with pytest.raises(ValueError, match=rf"input_ids: expected ids in \[0, 50\), got {bad_id}"):
        ane(ids, torch.ones_like(ids))


def test_token_types_outside_their_table_raise():
    ane = ane_models.optimize(tiny_model("bert"))
    ids = torch.tensor([[3, 4, 5]])
    with pytest.raises(ValueError, match=r"token_type_ids: expected ids in \[0, 2\), got 2"):
        ane(ids, torch.ones_like(ids), torch.tensor([[0, 1, 2]]))


@pytest.mark.parametrize("family", ["distilbert", "bert", "roberta"])
def test_masks_of_the_wrong_shape_raise_with_both_shapes(family):
    ane = ane_models.optimize(tiny_model(family))
    ids = torch.randint(2, 50, (2, 5))
    with pytest.raises(ValueError, match=r"attention_mask: expected shape \(2, 5\).*got \(2, 4\)"):
        ane(ids, torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"attention_mask: expected shape \(2, 5\).*got \(1, 5\)"):
        ane(ids, torch.ones(1, 5))


def test_multiple_choice_masks_of_the_wrong_shape_raise():
    ane = ane_models.optimize(tiny_model("bert", "ForMultipleChoice"))
    ids = torch.randint(2, 50, (2, 3, 5))
    with pytest.raises(ValueError, match=r"attention_mask: expected shape \(2, 3, 5\).*got \(2, 5\)"):
        ane(ids, torch.ones(2, 5))
    with pytest.raises(ValueError, match=r"input_ids: expected shape \(B, num_choices, S\)"):
        ane(ids[:, 0], torch.ones(2, 5))


def test_ids_of_the_wrong_rank_or_dtype_raise():
    ane = ane_models.optimize(tiny_model("bert"))
    with pytest.raises(ValueError, match=r"input_ids: expected shape \(B, S\) \(rank 2\), got \(5,\)"):
        ane(torch.arange(5))
    with pytest.raises(TypeError, match="input_ids: expected an integer dtype.*float32"):
        ane(torch.ones(1, 5))


def test_training_mode_warns_returns_eval_and_leaves_the_input_alone():
    model = tiny_model("roberta", "ForSequenceClassification").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.warns(TrainingModeWarning, match="RobertaForSequenceClassification is in training mode"):
        ane = ane_models.optimize(model)
    assert not ane.training and all(not m.training for m in ane.modules())
    assert model.training  # not switched behind the user's back
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    hf_storage = {p.data_ptr() for p in model.parameters()}
    assert not any(p.data_ptr() in hf_storage for p in ane.parameters())  # copies, not shared
    ids = torch.randint(2, 50, (2, 6))
    with torch.no_grad():
        assert torch.equal(ane(ids)[0], ane(ids)[0])  # no dropout


@pytest.mark.parametrize(("fp16_safe_eps", "expected"), [(True, 2.0**-23), (False, 1e-12), (1e-5, 1e-5)])
def test_layer_norm_eps_policy_is_applied_everywhere_and_recorded(fp16_safe_eps, expected):
    ane = ane_models.optimize(tiny_model("distilbert", "ForMaskedLM"), fp16_safe_eps=fp16_safe_eps)
    assert ane.ane_config.layer_norm_eps == expected
    assert ane.ane_config.checkpoint_layer_norm_eps == 1e-12
    assert ane.ane_config.eps_changed == (expected != 1e-12)
    norms = [m for m in ane.modules() if isinstance(m, LayerNormANE)]
    assert len(norms) == 4 and {m.eps for m in norms} == {expected}  # embeddings, 2 per layer, LM head


def test_a_checkpoint_eps_above_the_floor_is_kept():
    ane = ane_models.optimize(tiny_model("bert", layer_norm_eps=1e-5))
    assert ane.ane_config.layer_norm_eps == 1e-5 and not ane.ane_config.eps_changed


def test_int32_and_int64_ids_give_the_same_result():
    ane = ane_models.optimize(tiny_model("roberta", "ForTokenClassification"))
    ids = torch.randint(0, 50, (2, 7))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        assert torch.equal(ane(ids, mask)[0], ane(ids.int(), mask.int())[0])


def test_roberta_without_a_padding_id_names_it():
    config = transformers.RobertaConfig(hidden_size=8, num_attention_heads=2, num_hidden_layers=1,
                                        intermediate_size=16, vocab_size=40, max_position_embeddings=20,
                                        pad_token_id=None)
    model = transformers.RobertaModel(config).eval()
    with pytest.raises(ValueError, match=r"expected an integer config.pad_token_id .* got None"):
        ane_models.optimize(model)
