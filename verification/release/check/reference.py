"""The model a package is judged against: a transformers checkpoint directory, a causal LM's ``.gguf``,
or a model ``ane-verify run`` knows by name (its seeded weights, the same ``run`` converts).

``inspect_reference`` reads files only (nothing heavy is imported: a reference that cannot work is refused
in a fraction of a second); ``load_reference`` builds the transformers model, offline, weights only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import checkpoint_files, decoder_args

ENCODER_NAMES = checkpoint_files.EMBEDDED[:3]  # the reference Transformer is no transformers model
DECODER_NAMES = decoder_args.DECODER_MODELS


class ReferenceError(ValueError):
    """A ``--reference`` that cannot be used (the message names it and what was expected)."""


@dataclass(frozen=True)
class ReferenceKind:
    kind: str  # encoder | decoder
    name: str | None  # a model name run knows, else None
    path: str | None  # a checkpoint directory or .gguf, else None


def _renamed(error: Exception) -> ReferenceError:
    return ReferenceError(str(error).replace("--weights", "--reference", 1))


def inspect_reference(reference: str) -> ReferenceKind:
    if reference in ENCODER_NAMES:
        return ReferenceKind("encoder", reference, None)
    if reference in DECODER_NAMES:
        return ReferenceKind("decoder", reference, None)
    path = Path(reference)
    if not path.exists():
        raise ReferenceError(
            f"--reference: {reference!r} is neither a model name "
            f"({', '.join((*ENCODER_NAMES, *DECODER_NAMES))}) "
            "nor an existing checkpoint directory or .gguf file"
        )
    try:
        if decoder_args.is_decoder_checkpoint(reference):
            decoder_args.inspect_weights(reference)
            return ReferenceKind("decoder", None, reference)
        checkpoint_files.inspect_directory(path)
    except ValueError as error:
        raise _renamed(error) from None
    return ReferenceKind("encoder", None, reference)


@dataclass
class Reference:
    kind: str  # encoder | decoder
    model: Any  # the transformers model, eval, fp32
    tokenizer: Any
    label: str  # the report's "model"
    source: dict  # the report's "source" (without the inputs, which the check adds)
    pair: Any = None  # encoders: model_zoo.ModelPair (no optimized model), for its inputs
    decoder_source: Any = None  # decoders: decoder_zoo.DecoderSource


def load_reference(found: ReferenceKind) -> Reference:
    if found.kind == "decoder":
        from .. import decoder_zoo

        try:
            source = decoder_zoo.from_weights(found.path) if found.path else decoder_zoo.seeded_smollm2()
        except ValueError as error:
            raise _renamed(error) from None
        label = source.name if found.path is None else found.path
        return Reference(
            "decoder",
            source.hf_model,
            source.tokenizer,
            label,
            {},  # the decoder check writes it once the prompt is known (decoder_zoo.source_section)
            decoder_source=source,
        )
    from .. import model_zoo

    try:
        if found.name is not None:
            pair = model_zoo.embedded(found.name, optimize=False)
        else:
            pair = model_zoo.from_directory(found.path, optimize=False)
    except ValueError as error:
        raise _renamed(error) from None
    source = {
        "architecture": pair.architecture,
        "checkpoint": pair.source,
        "seed": model_zoo.SEED if pair.source == model_zoo.SEEDED_SOURCE else None,
    }
    return Reference("encoder", pair.baseline, pair.tokenizer, pair.name, source, pair=pair)
