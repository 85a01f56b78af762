"""What a foreign producer hands back: where it wrote the package and the checkpoint, the package's
interface as the producer built it, and what (if anything) was planted in it.

``outputs[i].layout`` is the layout the producer meant (the reference's own); a planted layout defect
changes the package, not the record, and says so in ``planted``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .seeding import sample_ids


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple
    dtype: str  # numpy name: "int32", "float16", "float32"


@dataclass(frozen=True)
class OutputSpec:
    name: str  # the package's output name
    reference: str  # the transformers output it is meant to be: "logits", "last_hidden_state"
    layout: str  # "bc" (a classifier), "bsc" (transformers' layout)
    shape: tuple


@dataclass(frozen=True)
class ForeignPackage:
    producer: str  # e.g. "coremltools_guide.bert_classifier"
    description: str  # one line: whose code path made it, and how
    package: str
    reference: str  # a transformers save_pretrained directory (safetensors)
    reference_class: str  # the transformers class that loads it: "BertForSequenceClassification"
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[OutputSpec, ...]
    seed: int  # sample_inputs(record) draws its ids from it
    precision: str = "fp16"
    compression: dict | None = None  # declared and applied, for a compressed package
    planted: dict | None = None  # {"defect": ..., "detail": ...}; None for a faithful package
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> ForeignPackage:
        data = dict(data)
        data["inputs"] = tuple(TensorSpec(**{**t, "shape": tuple(t["shape"])}) for t in data["inputs"])
        data["outputs"] = tuple(OutputSpec(**{**o, "shape": tuple(o["shape"])}) for o in data["outputs"])
        data["notes"] = tuple(data.get("notes") or ())
        return cls(**data)


def save_records(records: list[ForeignPackage], path: Path) -> None:
    path.write_text(json.dumps([r.to_json() for r in records], indent=1))


def load_records(path: Path) -> list[ForeignPackage]:
    return [ForeignPackage.from_json(r) for r in json.loads(Path(path).read_text())]


def sample_inputs(record: ForeignPackage) -> dict[str, np.ndarray]:
    """The package's inputs by name (ids, then the 0/1 mask; rows after the first end in padding),
    in the dtypes it declares."""
    ids_spec, mask_spec = record.inputs
    batch, seq_len = ids_spec.shape
    vocab = json.loads((Path(record.reference) / "config.json").read_text())["vocab_size"]
    ids, mask = sample_ids(batch, seq_len, vocab, record.seed)
    return {
        ids_spec.name: ids.numpy().astype(ids_spec.dtype),
        mask_spec.name: mask.numpy().astype(mask_spec.dtype),
    }


def reference_outputs(record: ForeignPackage, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The checkpoint's outputs (fp32 transformers, eager attention) on ``inputs``, by reference name."""
    import torch
    import transformers

    model = getattr(transformers, record.reference_class).from_pretrained(
        record.reference, attn_implementation="eager"
    ).eval()
    ids, mask = (torch.from_numpy(inputs[spec.name].astype(np.int64)) for spec in record.inputs)
    with torch.no_grad():
        result = model(input_ids=ids, attention_mask=mask, return_dict=True)
    return {o.reference: result[o.reference].numpy() for o in record.outputs}
