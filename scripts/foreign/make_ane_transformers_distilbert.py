"""Make tests/foreign/packages/ane_transformers_distilbert: Apple's ane_transformers 0.1.3 DistilBERT
converted by its published tutorial, and the transformers checkpoint it was converted from.

Runs in its own environment (ane_transformers imports transformers' MultiHeadSelfAttention, gone in
transformers 5): see that folder's README.md for the command and the versions. Tiny seeded weights
(tests/foreign/seeding.py) stand in for the tutorial's hub checkpoint, and seeded ids padded to the
sequence length for its tokenizer.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import coremltools as ct  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from ane_transformers.huggingface import distilbert as ane_distilbert  # noqa: E402

from tests.foreign.seeding import draw_weights  # noqa: E402

SEED, SEQ_LEN, PADDING = 5, 32, 8
CONFIG = dict(
    vocab_size=128, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=64, num_labels=2
)
PACKAGE = f"HuggingFace_ane_transformers_distilbert_seqLen{SEQ_LEN}_batchSize1.mlpackage"


def seeded_checkpoint(directory: Path) -> None:
    config = transformers.DistilBertConfig(**CONFIG)
    model = transformers.DistilBertForSequenceClassification(config).eval()
    draw_weights(model, SEED).save_pretrained(directory)


def tokenized() -> dict[str, torch.Tensor]:
    """What the tutorial's tokenizer gives for one short sentence padded to max_length: ids, then 0s."""
    generator = torch.Generator().manual_seed(SEED)
    ids = torch.randint(1, CONFIG["vocab_size"], (1, SEQ_LEN), generator=generator)
    mask = torch.ones(1, SEQ_LEN, dtype=torch.long)
    mask[:, SEQ_LEN - PADDING :], ids[:, SEQ_LEN - PADDING :] = 0, 0
    return {"input_ids": ids, "attention_mask": mask}


def restore(optimized_model, baseline_model) -> str:
    """The tutorial's ``optimized_model.load_state_dict(baseline_model.state_dict())``. On torch 2 the
    hook that unsqueezes Linear weights into Conv2d weights, registered on the inner DistilBertModel,
    sees only that module's keys, so the heads' weights keep their Linear shape and loading fails: the
    package's own hook is then applied to the whole state dict first, as a user would."""
    state = baseline_model.state_dict()
    try:
        optimized_model.load_state_dict(state)
        return "load_state_dict as in the tutorial"
    except RuntimeError as error:
        first = str(error).strip().splitlines()[1].strip()
    ane_distilbert.linear_to_conv2d_map(state, "", None, True, [], [], [])
    optimized_model.load_state_dict(state)
    return (
        f"the tutorial's load_state_dict failed on torch {torch.__version__} ({first}); "
        "ane_distilbert.linear_to_conv2d_map applied to the whole state dict first"
    )


def psnr(reference: np.ndarray, output: np.ndarray) -> float:
    rmse = np.sqrt(np.mean((reference.astype(np.float64) - output) ** 2))
    return float(20 * np.log10((np.abs(reference).max() + 1e-5) / (rmse + 1e-10)))


def main(out: Path) -> None:
    torch.set_grad_enabled(False)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    seeded_checkpoint(out / "reference")
    baseline_model = transformers.AutoModelForSequenceClassification.from_pretrained(
        out / "reference", return_dict=False, torchscript=True, attn_implementation="eager"
    ).eval()
    optimized_model = ane_distilbert.DistilBertForSequenceClassification(baseline_model.config).eval()
    restored = restore(optimized_model, baseline_model)
    inputs = tokenized()
    traced_optimized_model = torch.jit.trace(optimized_model, (inputs["input_ids"], inputs["attention_mask"]))
    ane_mlpackage_obj = ct.convert(
        traced_optimized_model,
        convert_to="mlprogram",
        inputs=[
            ct.TensorType(f"input_{name}", shape=tensor.shape, dtype=np.int32)
            for name, tensor in inputs.items()
        ],
        compute_units=ct.ComputeUnit.ALL,
    )
    ane_mlpackage_obj.save(str(out / PACKAGE))
    logits = baseline_model(inputs["input_ids"], inputs["attention_mask"])[0].numpy()
    ane_logits = optimized_model(inputs["input_ids"], inputs["attention_mask"])[0].numpy()
    spec = ane_mlpackage_obj.get_spec()
    made = {
        "package": PACKAGE,
        "config": CONFIG,
        "seed": SEED,
        "inputs": {f"input_{k}": [list(v.shape), "int32"] for k, v in inputs.items()},
        "sample_input_ids": " ".join(map(str, inputs["input_ids"][0].tolist())),
        "sample_attention_mask": " ".join(map(str, inputs["attention_mask"][0].tolist())),
        "outputs": [o.name for o in spec.description.output],
        "torch_psnr_ane_vs_baseline_db": round(psnr(logits, ane_logits), 2),
        "restore": restored,
        "versions": {
            name: version(name)
            for name in ("ane-transformers", "transformers", "torch", "coremltools", "numpy", "safetensors")
        },
        "python": platform.python_version(),
    }
    (out / "made.json").write_text(json.dumps(made, indent=1) + "\n")
    print(json.dumps(made, indent=1))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "tests/foreign/packages/ane_transformers_distilbert"
    )
    main(parser.parse_args().out)
