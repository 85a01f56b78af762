"""What ``ane-verify`` can tell about a checkpoint directory from its files alone: config.json, the
safetensors headers, whether a tokenizer is there. Nothing here imports torch, transformers or
ane_models, so a directory that cannot work is refused in a fraction of a second
(``verification.release.model_zoo`` builds the models and re-exports these names)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

EMBEDDED = ("distilbert", "bert", "roberta", "reference")
SEED = 0  # of every seeded model and random input
EMBEDDED_ARCHITECTURES = {
    "distilbert": "DistilBertForSequenceClassification",
    "bert": "BertForSequenceClassification",
    "roberta": "RobertaForSequenceClassification",
    "reference": "torch.nn.Transformer",
}
SEEDED_SOURCE = "seeded config"
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")

# ane_models' encoder heads by model type (ane_models.supported_models() without its decoders).
HEADS = (
    "Model",
    "ForMaskedLM",
    "ForSequenceClassification",
    "ForQuestionAnswering",
    "ForTokenClassification",
    "ForMultipleChoice",
)
ENCODER_PREFIXES = {
    "distilbert": "DistilBert",
    "bert": "Bert",
    "roberta": "Roberta",
    "xlm-roberta": "XLMRoberta",
}
DECODER_TYPES = ("llama", "qwen2", "qwen3")  # ane_models.DECODER_TYPES
DIFFERENT = {  # ane_models.roberta.DIFFERENT: model types named like a supported one but built otherwise
    "xlm-roberta-xl": "XLM-RoBERTa-XL normalizes before each sublayer (pre-LN), RoBERTa after (post-LN)",
}


class ModelInputError(ValueError):
    """Unknown model names, unusable weight directories and impossible sizes."""


def refuse_missing_weights(loading: dict, path, weights: str, expected: str) -> None:
    """Refuse a checkpoint whose load (transformers' ``output_loading_info``) left weights missing:
    transformers draws them at random and loads on, and a gate must not verify weights nobody trained.
    ``weights`` names the model's weights, ``expected`` says what the checkpoint should hold."""
    missing = sorted(loading.get("missing_keys") or ())
    if missing:
        raise ModelInputError(
            f"--weights: {str(path)!r} lacks {len(missing)} of {weights} (e.g. {', '.join(missing[:3])}); "
            f"expected {expected}"
        )


@dataclass
class Checkpoint:
    """What a checkpoint directory holds, read from its files alone (nothing is built or loaded)."""

    path: Path
    model_type: str
    architecture: str
    config: dict
    safetensors: bool
    tokenizer: bool

    @property
    def max_seq_len(self) -> int:
        return max_positions(self.model_type, self.config)


def max_positions(model_type: str, config: dict) -> int:
    """The longest sequence of a transformers config (as ``ane_models`` computes it when it builds):
    RoBERTa's positions start after the padding index."""
    positions = int(config.get("max_position_embeddings", 512))
    if model_type in ("roberta", "xlm-roberta"):
        return positions - int(config.get("pad_token_id", 1)) - 1
    return positions


def embedded_max_positions(family: str) -> int:
    return 10**6 if family == "reference" else 512


def _supported_heads() -> dict[str, list[str]]:
    """The heads ``ane-verify run`` verifies, by model type: ane_models' encoders (its decoders need a
    generation-shaped pipeline, added beside this one). A copy of ``ane_models.supported_models()``, so
    that a checkpoint is judged without importing torch (tests/cli/test_refusals.py keeps them equal)."""
    return {t: [f"{prefix}{head}" for head in HEADS] for t, prefix in ENCODER_PREFIXES.items()}


def inspect_directory(path: str | Path) -> Checkpoint:
    """Read a checkpoint directory's config.json and list its files; refuse, naming what is wrong, a
    directory that cannot be verified: missing or unreadable files, an unsupported model type or head.
    Nothing is built and no weights are loaded (so this answers in well under a second)."""
    path = Path(path)
    if not path.is_dir():
        raise ModelInputError(f"--weights: {str(path)!r} is not a directory")
    if not os.access(path, os.R_OK | os.X_OK):
        raise ModelInputError(f"--weights: {str(path)!r} is not readable")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise ModelInputError(f"--weights: incomplete checkpoint directory {str(path)!r}: no config.json")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelInputError(f"--weights: unreadable config.json in {str(path)!r} ({error})") from None
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise ModelInputError(f"--weights: config.json in {str(path)!r} names no model_type")
    safetensors = sorted(path.glob("*.safetensors"))
    pickled = sorted(path.glob("pytorch_model*.bin"))
    if not safetensors and not pickled:
        raise ModelInputError(
            f"--weights: incomplete checkpoint directory {str(path)!r}: no *.safetensors or pytorch_model.bin"
        )
    for weights in safetensors:
        _check_safetensors_header(weights)
    model_type = config["model_type"]
    supported = _supported_heads()
    if model_type not in supported:
        if model_type in DECODER_TYPES:
            raise ModelInputError(
                f"--weights: model_type {model_type!r} is a decoder; the encoder pipeline verifies "
                f"{', '.join(sorted(supported))} (ane-verify run sends causal LMs to the decoder pipeline); "
                f"checkpoint {str(path)!r}"
            )
        differs = DIFFERENT.get(model_type)
        raise ModelInputError(
            f"--weights: model_type {model_type!r} is not supported"
            + (f" ({differs})" if differs else "")
            + f"; supported: {', '.join(sorted(supported))}; checkpoint {str(path)!r}"
        )
    architectures = config.get("architectures") or []
    if not architectures:
        raise ModelInputError(
            f"--weights: config.json in {str(path)!r} names no architecture (the head class); expected "
            f"one of {', '.join(supported[model_type])}"
        )
    architecture = architectures[0]
    if architecture not in supported[model_type]:
        # as ane_models.optimize refuses it: verifying the base model instead would not verify this one
        raise ModelInputError(
            f"--weights: {architecture} is not supported (a {model_type} head ane_models does not "
            f"implement); supported {model_type} heads: {', '.join(supported[model_type])}; checkpoint "
            f"{str(path)!r}"
        )
    tokenizer = any((path / name).is_file() for name in TOKENIZER_FILES)
    return Checkpoint(path, model_type, architecture, config, bool(safetensors), tokenizer)


def _check_safetensors_header(path: Path) -> None:
    """A safetensors file starts with its 8-byte header length and a JSON header: read just that."""
    try:
        with path.open("rb") as stream:
            size = int.from_bytes(stream.read(8), "little")
            if not 2 <= size <= 100_000_000 or size + 8 > path.stat().st_size:
                raise ValueError("bad header length")
            json.loads(stream.read(size))
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise ModelInputError(
            f"--weights: cannot load the weights in {str(path.parent)!r} ({path.name} is not a safetensors "
            f"file: {error})"
        ) from None
