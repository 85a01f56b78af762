"""Core AI assets made the way Apple's coreai-torch converts a torch model, straight from transformers (no
ane_models): a seeded transformers model (in fp16: ``.half()`` of a copy), ``torch.export.export`` on
sample ids, ``run_decompositions(coreai_torch.get_decomp_table())``, ``TorchConverter`` with the names the
user gives (``input_ids``, ``attention_mask``; the output ``logits`` / ``last_hidden_state``),
``to_coreai()``, ``save_asset``. The converter takes the ids as int32 whatever torch exported.

``defect`` plants one fault in the asset (the checkpoint stays right), as the coremltools-guide producer
does: ``swapped_query``, ``mask_inverted``, and for DistilBertModel the layouts ``bcs`` / ``bsc_scrambled``.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import torch
import transformers

from .coremltools_guide import BERT, DISTILBERT, _faulty, _planted
from .records import ForeignPackage, OutputSpec, TensorSpec
from .seeding import draw_weights, sample_ids

BATCH, SEQ_LEN = 2, 16
DEFECTS = ("swapped_query", "mask_inverted", "bcs", "bsc_scrambled")


class _Named(torch.nn.Module):
    """The model's first output only (a planted layout defect already returns a tensor)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        out = self.model(input_ids, attention_mask)
        return out[0] if isinstance(out, tuple) else out


def _convert(module, output_name: str, precision: str, path: Path) -> None:
    import coreai_torch

    module = copy.deepcopy(module).eval()
    if precision == "fp16":
        module = module.half()
    ids, mask = sample_ids(BATCH, SEQ_LEN, 2, seed=0)  # shapes and dtypes only
    with torch.no_grad():
        program = torch.export.export(_Named(module), (ids, mask))
    program = program.run_decompositions(coreai_torch.get_decomp_table())
    converter = coreai_torch.TorchConverter()
    converter.add_exported_program(
        program, input_names=["input_ids", "attention_mask"], output_names=[output_name]
    )
    shutil.rmtree(path, ignore_errors=True)
    converter.to_coreai().save_asset(path)  # save_asset takes a Path


def _make(directory, model, name, module, output, layout, planted, description, seed, precision):
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory / "reference")
    path = directory / f"{name}.aimodel"
    _convert(module, output, precision, path)
    return ForeignPackage(
        producer=f"coreai_straight.{name}",
        description=description,
        package=str(path),
        reference=str(directory / "reference"),
        reference_class=type(model).__name__,
        inputs=tuple(TensorSpec(n, (BATCH, SEQ_LEN), "int32") for n in ("input_ids", "attention_mask")),
        outputs=(OutputSpec(output, output, layout, ()),),
        seed=seed,
        precision=precision,
        planted=planted,
    )


def bert_classifier(directory, defect: str | None = None, seed: int = 17, precision: str = "fp16"):
    """A seeded BertForSequenceClassification (3 labels) as ``BertClassifier.aimodel``, output ``logits``."""
    planted = _planted(defect, DEFECTS[:2])
    config = transformers.BertConfig(**BERT, return_dict=False, attn_implementation="eager")
    model = draw_weights(transformers.BertForSequenceClassification(config).eval(), seed)
    module = _faulty(model, defect, lambda m, i: m.bert.encoder.layer[i].attention.self.query)
    description = f"coreai-torch: transformers BertForSequenceClassification, torch.export, {precision}"
    return _make(
        directory, model, "BertClassifier", module, "logits", "bc", planted, description, seed, precision
    )


def distilbert_model(directory, defect: str | None = None, seed: int = 18, precision: str = "fp16"):
    """A seeded DistilBertModel as ``DistilBertModel.aimodel``, output ``last_hidden_state`` in (B, S, C)."""
    planted = _planted(defect, DEFECTS)
    config = transformers.DistilBertConfig(**DISTILBERT, return_dict=False, attn_implementation="eager")
    model = draw_weights(transformers.DistilBertModel(config).eval(), seed)
    module = _faulty(model, defect, lambda m, i: m.transformer.layer[i].attention.q_lin)
    description = f"coreai-torch: transformers DistilBertModel, torch.export, {precision}"
    return _make(
        directory,
        model,
        "DistilBertModel",
        module,
        "last_hidden_state",
        "bsc",
        planted,
        description,
        seed,
        precision,
    )
