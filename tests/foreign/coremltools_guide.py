"""Packages made the way coremltools' guide converts a transformers model: seeded transformers model,
sample ids, ``ct.convert(..., convert_to="mlprogram")`` with ``ct.TensorType`` int32 inputs named as a
user names them (``input_ids``, ``attention_mask``), default fp16 precision, transformers' (B, S, C).

The guide traces with ``torch.jit.trace``; with transformers 5.23 and coremltools 9.0 that fails
(``aten::Int``: "only 0-dimensional arrays can be converted to Python scalars", then ``new_ones`` has
no converter). coremltools' other documented front end does convert, with no op registered: a
``torch.export`` program, decomposed as coremltools' own error message asks (``run_decompositions()``,
the default core ATen table, which rewrites ``new_ones``).

``defect`` plants one fault in the package (the checkpoint stays right): ``swapped_query`` swaps layer
0's and layer 1's query weights, ``mask_inverted`` feeds the model ``1 - attention_mask``; for
DistilBertModel's hidden states also ``bcs`` / ``bc1s`` (transposed to (B, C, S) / (B, C, 1, S), name
kept) and ``bsc_scrambled`` (transposed, then reshaped back to (B, S, C): name and shape kept).
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import torch
import transformers

from .records import ForeignPackage, OutputSpec, TensorSpec
from .seeding import draw_weights, sample_ids

BATCH, SEQ_LEN = 2, 16
BERT = dict(
    vocab_size=200,
    hidden_size=48,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=96,
    max_position_embeddings=64,
    num_labels=3,
)
DISTILBERT = dict(vocab_size=150, dim=64, n_layers=2, n_heads=4, hidden_dim=128, max_position_embeddings=64)
LAYOUT_DEFECTS = ("bcs", "bc1s", "bsc_scrambled")
DEFECTS = ("swapped_query", "mask_inverted", *LAYOUT_DEFECTS)
EXPORT_NOTE = (
    "torch.jit.trace + ct.convert fails with transformers 5.23 / coremltools 9.0 (aten::Int TypeError, "
    "then new_ones): converted from torch.export.export(...).run_decompositions() instead, no op registered"
)


class MaskInverted(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids, 1 - attention_mask)


class Relaid(torch.nn.Module):
    """The first output moved out of (B, S, C) by ``layout``."""

    def __init__(self, model, layout: str):
        super().__init__()
        self.model, self.layout = model, layout

    def forward(self, input_ids, attention_mask):
        hidden = self.model(input_ids, attention_mask)[0].transpose(1, 2)
        if self.layout == "bc1s":
            return hidden.unsqueeze(2)
        if self.layout == "bsc_scrambled":
            return hidden.reshape(hidden.shape[0], hidden.shape[2], hidden.shape[1])
        return hidden


def _registrations_present() -> bool:
    """Whether ane-verify's own torch op converters are registered in this process (they would serve
    the conversion instead of coremltools' own)."""
    return "verification.coreml.torch_ops" in sys.modules


def _swap_query(model, attention_of) -> None:
    first, second = attention_of(0), attention_of(1)
    with torch.no_grad():
        saved = first.weight.clone()
        first.weight.copy_(second.weight)
        second.weight.copy_(saved)


def _convert(module, output_name: str | None):
    import coremltools as ct

    ids, mask = sample_ids(BATCH, SEQ_LEN, 2, seed=0)  # shapes and dtypes only
    program = torch.export.export(module.eval(), (ids, mask)).run_decompositions()
    return ct.convert(
        program,
        inputs=[
            ct.TensorType(name="input_ids", shape=(BATCH, SEQ_LEN), dtype=np.int32),
            ct.TensorType(name="attention_mask", shape=(BATCH, SEQ_LEN), dtype=np.int32),
        ],
        outputs=[ct.TensorType(name=output_name)] if output_name else None,
        convert_to="mlprogram",
    )


def _make(directory, model, name: str, to_convert, output_name, planted, description, seed):
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory / "reference")
    mlmodel = _convert(to_convert, output_name)
    package = directory / f"{name}.mlpackage"
    mlmodel.save(str(package))
    spec = mlmodel.get_spec()
    out = spec.description.output[0]
    notes = [EXPORT_NOTE]
    if _registrations_present():
        notes.append("ane-verify's torch op registrations were loaded in the producing process")
    return ForeignPackage(
        producer=f"coremltools_guide.{name}",
        description=description,
        package=str(package),
        reference=str(directory / "reference"),
        reference_class=type(model).__name__,
        inputs=tuple(TensorSpec(n, (BATCH, SEQ_LEN), "int32") for n in ("input_ids", "attention_mask")),
        outputs=(
            OutputSpec(
                out.name,
                _reference_output(model),
                "bc" if isinstance(model, transformers.BertForSequenceClassification) else "bsc",
                tuple(out.type.multiArrayType.shape),
            ),
        ),
        seed=seed,
        planted=planted,
        notes=tuple(notes),
    )


def _reference_output(model) -> str:
    return "logits" if isinstance(model, transformers.BertForSequenceClassification) else "last_hidden_state"


def _planted(defect: str | None, allowed: tuple) -> dict | None:
    if defect is not None and defect not in allowed:
        raise ValueError(f"defect: expected one of {', '.join(allowed)} or None, got {defect!r}")
    details = {
        "swapped_query": "layer 0's and layer 1's query weights swapped in the package only",
        "mask_inverted": "a wrapper feeds the model 1 - attention_mask",
        "bcs": "the hidden states transposed to (B, C, S), output name kept",
        "bc1s": "the hidden states transposed to (B, C, 1, S), output name kept",
        "bsc_scrambled": "the hidden states transposed and reshaped back to (B, S, C): name and shape kept",
    }
    return None if defect is None else {"defect": defect, "detail": details[defect]}


def _faulty(model, defect: str | None, attention_of):
    """The module to convert: ``model`` itself, or a copy / wrapper with ``defect`` planted."""
    if defect is None:
        return model
    converted = copy.deepcopy(model)
    if defect == "swapped_query":
        _swap_query(converted, lambda i: attention_of(converted, i))
        return converted
    if defect == "mask_inverted":
        return MaskInverted(converted)
    return Relaid(converted, defect)


def bert_classifier(directory, defect: str | None = None, seed: int = 7) -> ForeignPackage:
    """A seeded BertForSequenceClassification (3 labels) as ``BertClassifier.mlpackage``; the output keeps
    coremltools' generated name, as the guide leaves it."""
    planted = _planted(defect, DEFECTS[:2])
    config = transformers.BertConfig(**BERT, return_dict=False, attn_implementation="eager")
    model = draw_weights(transformers.BertForSequenceClassification(config).eval(), seed)
    module = _faulty(model, defect, lambda m, i: m.bert.encoder.layer[i].attention.self.query)
    description = (
        "coremltools guide: transformers BertForSequenceClassification, torch.export, "
        "ct.convert mlprogram fp16"
    )
    return _make(directory, model, "BertClassifier", module, None, planted, description, seed)


def distilbert_model(directory, defect: str | None = None, seed: int = 8) -> ForeignPackage:
    """A seeded DistilBertModel as ``DistilBertModel.mlpackage``, its hidden states named by the user
    ``last_hidden_state`` in (B, S, C)."""
    planted = _planted(defect, DEFECTS)
    config = transformers.DistilBertConfig(**DISTILBERT, return_dict=False, attn_implementation="eager")
    model = draw_weights(transformers.DistilBertModel(config).eval(), seed)
    module = _faulty(model, defect, lambda m, i: m.transformer.layer[i].attention.q_lin)
    description = "coremltools guide: transformers DistilBertModel, torch.export, ct.convert mlprogram fp16"
    return _make(directory, model, "DistilBertModel", module, "last_hidden_state", planted, description, seed)
