"""``ane_models.set_layout``: the coreai layout (Core AI's mask and axis forms) computes what the coreml
layout computes, for every family and head and the reference Transformer; the padding mask follows the model's
dtype; bad layouts are refused by name. Tiny seeded models, torch only."""

import copy
import warnings

import pytest
import torch
import transformers

import ane_models
from ane_models.layout import LAYOUTS, layout_of, set_layout
from verification.metrics import psnr

FAMILIES = {
    "distilbert": ("DistilBert", lambda: transformers.DistilBertConfig(
        dim=32, n_heads=4, n_layers=2, hidden_dim=48, vocab_size=97, max_position_embeddings=40)),
    "bert": ("Bert", lambda: transformers.BertConfig(
        hidden_size=32, num_attention_heads=4, num_hidden_layers=2, intermediate_size=48, vocab_size=97,
        max_position_embeddings=40, type_vocab_size=2)),
    "roberta": ("Roberta", lambda: transformers.RobertaConfig(
        hidden_size=32, num_attention_heads=4, num_hidden_layers=2, intermediate_size=48, vocab_size=97,
        max_position_embeddings=40, type_vocab_size=1, pad_token_id=1)),
}  # fmt: skip
HEADS = ("Model", "ForMaskedLM", "ForSequenceClassification", "ForQuestionAnswering",
         "ForTokenClassification", "ForMultipleChoice")  # fmt: skip
BATCH, CHOICES, SEQ, PADDED_FROM = 2, 3, 16, 11


def ane_model(family: str, head: str) -> torch.nn.Module:
    prefix, make_config = FAMILIES[family]
    config = make_config()
    config.num_labels = 2 if head == "ForQuestionAnswering" else 3
    config._attn_implementation = "eager"
    config.initializer_range = 0.2  # away from near-constant outputs
    torch.manual_seed(sum(map(ord, family + head)))
    source = getattr(transformers, prefix + head)(config).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ane_models.optimize(source)


def model_inputs(family: str, head: str) -> tuple[torch.Tensor, ...]:
    """int32 ids with the second row right-padded, the HF mask, token types for BERT and RoBERTa."""
    shape = (BATCH, CHOICES, SEQ) if head == "ForMultipleChoice" else (BATCH, SEQ)
    generator = torch.Generator().manual_seed(7)
    ids = torch.randint(3, 97, shape, generator=generator, dtype=torch.int32)
    mask = torch.ones(shape, dtype=torch.int32)
    mask[1, ..., PADDED_FROM:] = 0
    return (ids, mask) if family == "distilbert" else (ids, mask, torch.zeros_like(ids))


def reference_model() -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    torch.manual_seed(11)
    source = torch.nn.Transformer(32, 4, 2, 2, 48, dropout=0.0, batch_first=True).eval()
    model = ane_models.reference.from_torch_transformer(source)
    src, tgt = torch.randn(BATCH, 32, 1, 12), torch.randn(BATCH, 32, 1, 10)
    src_pad = torch.zeros(BATCH, 12, dtype=torch.bool)
    src_pad[1, 8:] = True
    tgt_pad = torch.zeros(BATCH, 10, dtype=torch.bool)
    tgt_pad[1, 7:] = True
    return model, (src, tgt, src_pad, tgt_pad, src_pad)


def outputs(model, inputs) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        out = model(*inputs)
    return out if isinstance(out, tuple) else (out,)


def assert_same_outputs(model, inputs, name: str) -> None:
    coreml = outputs(model, inputs)
    coreai = outputs(set_layout(copy.deepcopy(model), "coreai"), inputs)
    assert len(coreml) == len(coreai), name
    for i, (a, b) in enumerate(zip(coreml, coreai, strict=True)):
        assert a.shape == b.shape, f"{name} output {i}: shapes {tuple(a.shape)} (coreml) vs {tuple(b.shape)}"
        error = float((a - b).abs().max())
        assert error <= 1e-5, (
            f"{name} output {i} {tuple(a.shape)}: coreai vs coreml layout, fp32, max error {error:.3g}, "
            f"PSNR {psnr(a, b):.1f} dB (seed {sum(map(ord, name))})"
        )


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_coreai_layout_computes_what_the_coreml_layout_computes(family, head):
    model = ane_model(family, head)
    assert layout_of(model) == "coreml"
    assert_same_outputs(model, model_inputs(family, head), f"{family}-{head}")


def test_the_reference_transformer_in_both_layouts():
    model, inputs = reference_model()
    assert_same_outputs(model, inputs, "reference-Transformer")


def _biases_seen(model, inputs) -> list[torch.Tensor]:
    """The additive bias every encoder layer receives (its second positional argument)."""
    seen: list[torch.Tensor] = []
    layers = [m for m in model.modules() if type(m).__name__ == "TransformerEncoderLayerANE"]
    hooks = [layer.register_forward_pre_hook(lambda _, args: seen.append(args[1])) for layer in layers]
    try:
        outputs(model, inputs)
    finally:
        for hook in hooks:
            hook.remove()
    assert seen, f"no encoder layer ran in {type(model).__name__}"
    return seen


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_padding_mask_follows_the_model_dtype_and_layout(family, dtype, layout):
    model = set_layout(ane_model(family, "ForSequenceClassification").to(dtype), layout)
    inputs = model_inputs(family, "ForSequenceClassification")
    expected = (BATCH, SEQ, 1, SEQ) if layout == "coreai" else (BATCH, SEQ, 1, 1)
    for bias in _biases_seen(model, inputs):
        assert bias.dtype == dtype and tuple(bias.shape) == expected, (
            f"{family} {layout} layout, model {dtype}: mask {bias.dtype} {tuple(bias.shape)}, "
            f"expected {dtype} {expected}"
        )
        keys_masked = bias[1, :, 0, 0] if layout == "coreml" else bias[1, :, 0, 3]
        masked, kept = keys_masked[PADDED_FROM:], keys_masked[:PADDED_FROM]
        assert (masked == -1e4).all() and (kept == 0).all(), f"{family} {layout}: key biases {keys_masked}"


def test_the_reference_masks_follow_the_layout():
    model, inputs = reference_model()
    set_layout(model, "coreai")
    memory_bias = model._padding_bias(inputs[4], inputs[0], inputs[1], "memory_key_padding_mask")
    assert tuple(memory_bias.shape) == (BATCH, 12, 1, 10)  # keys of the source, queries of the target
    assert (memory_bias[1, 8:] == -1e4).all() and (memory_bias[1, :8] == 0).all()


def test_set_layout_switches_back_and_refuses_other_values():
    model = ane_model("bert", "ForMultipleChoice")
    assert set_layout(model, "coreai") is model and layout_of(model) == "coreai"
    assert set_layout(model, "coreml") is model and layout_of(model) == "coreml"
    with pytest.raises(ValueError, match=r"layout: expected one of \['coreml', 'coreai'\], got 'ane'"):
        set_layout(model, "ane")
    assert layout_of(model) == "coreml", "a refused layout changes nothing"
    with pytest.raises(TypeError, match="set_layout: expected an ane_models model"):
        set_layout("bert", "coreai")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Linear has no layout switch"):
        set_layout(torch.nn.Linear(2, 2), "coreai")


def test_query_chunks_split_the_coreai_mask_along_the_queries():
    prefix, make_config = FAMILIES["distilbert"]
    config = make_config()
    config.initializer_range = 0.2
    torch.manual_seed(5)
    source = transformers.DistilBertModel(config).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ane_models.optimize(source, query_chunk_size=4)  # 16 tokens: 4 chunks
    assert_same_outputs(model, model_inputs("distilbert", "Model"), "distilbert-Model-query_chunked")
