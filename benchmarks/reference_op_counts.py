"""Op counts of the published reference DistilBERT (Apple's ``ane_transformers`` 0.1.3), converted the
way its tutorial does, at freshly initialised and at trained-like LayerNorm weights.

The reference needs transformers 4.x (its DistilBERT subclasses modules that transformers 5 renamed), so
this runs in the ``torch213-cml90-tf457`` cell (transformers 4.57.6, coremltools 9.0), with the reference
installed from PyPI without its pinned dependencies:

    pip install --no-deps ane-transformers==0.1.3
    python benchmarks/reference_op_counts.py            # prints JSON; bench_readiness.py records it

Model: ``DistilBertForSequenceClassification`` with the DistilBERT-base config (eager attention), seeded
random weights, traced at sequence 128, batch 1 (int64 ids and mask, as a tokenizer returns them),
converted to an fp16 ML Program by plain ``coremltools.convert`` and counted by
``verification.readiness.analyze``. Trained-like: every LayerNormANE weight drawn from [0.5, 1.5) and bias
from [-0.1, 0.1).
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def count(trained: bool) -> dict:
    import coremltools as ct
    import numpy as np
    import torch
    import transformers
    from ane_transformers.huggingface import distilbert as reference

    from verification.readiness import analyze

    torch.manual_seed(0)
    config = transformers.DistilBertConfig(attn_implementation="eager")
    config.return_dict = False
    model = reference.DistilBertForSequenceClassification(config).eval()
    norms = [m for m in model.modules() if type(m).__name__ == "LayerNormANE"]
    generator = torch.Generator().manual_seed(3)
    if trained:
        with torch.no_grad():
            for norm in norms:
                norm.weight.copy_(torch.rand(norm.weight.shape, generator=generator) + 0.5)
                norm.bias.copy_(torch.rand(norm.bias.shape, generator=generator) * 0.2 - 0.1)
    ids = torch.randint(3, config.vocab_size, (1, 128), generator=generator, dtype=torch.int64)
    mask = torch.ones_like(ids)
    traced = torch.jit.trace(model, (ids, mask), strict=False)
    mlmodel = ct.convert(
        traced,
        inputs=[
            ct.TensorType("input_ids", shape=ids.shape, dtype=np.int32),
            ct.TensorType("attention_mask", shape=mask.shape, dtype=np.int32),
        ],
        convert_to="mlprogram",
        compute_precision=ct.precision.FLOAT16,
    )
    report = analyze(mlmodel, label="reference")
    return {
        "layer_norm_weights": "trained-like" if trained else "fresh (1, 0)",
        "ops": report.ops,
        "layer_norms": len(norms),
        "layer_norms_fused": report.layer_norms_fused,
        "copies": len(report.copies),
        "op_counts": report.op_counts,
        "versions": {"transformers": transformers.__version__, "coremltools": ct.__version__},
    }


def main() -> int:
    warnings.filterwarnings("ignore")
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    print(json.dumps([count(False), count(True)], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
