"""ANE-optimized equivalents of Hugging Face models, built from any checkpoint.

``optimize(model)`` takes a transformers model instance (DistilBERT, BERT, RoBERTa or XLM-RoBERTa: the
base model or a MaskedLM, SequenceClassification, QuestionAnswering, TokenClassification or
MultipleChoice head) and returns the equivalent ANE model in eval mode, float32, with the checkpoint's
weights copied in.
It reads only the public config attributes and ``model.state_dict()``; no transformers class is
imported or subclassed, so any transformers version from 4.46 on works.

Calling convention of the returned models: ``model(input_ids, attention_mask)`` (BERT and RoBERTa
also take ``token_type_ids`` third), ids int32 or int64 of shape (B, S) ((B, num_choices, S) for
multiple choice), mask in the Hugging Face convention (1 = attend, 0 = padding). They return a tuple
whose first element means what the transformers model's first output means with
``return_dict=False``; head outputs have transformers' shapes. Hidden states of the base models are
in the ANE layout (B, C, 1, S): ``hidden_states_to_bsc`` turns them into transformers' (B, S, C).

Causal LMs of the Llama family (``llama``, ``qwen2``, ``qwen3``: the ``...Model`` and ``...ForCausalLM``
classes) come with a fixed-capacity KV cache; ``optimize`` then takes ``cache_capacity``,
``prefill_length`` and ``batch_size``, and ``generate(model, input_ids, max_new_tokens,
attention_mask)`` decodes greedily (see ``ane_models.llama`` and ``ane_models.generation``).

``set_layout(model, "coreai")`` switches an encoder (or ``TransformerANE``) to the tensor shapes of Core AI's
Neural Engine rules, ``"coreml"`` (the default) back; outputs do not change (``ane_models.layout``).

``ane_models.reference`` holds the standalone encoder-decoder ``TransformerANE``.
"""

from __future__ import annotations

import torch
from torch import nn

from ane_layers import from_bc1s

from . import bert, distilbert, llama, reference, roberta
from .common import (
    FP16_SAFE_LAYER_NORM_EPS,
    ANEConfig,
    CheckpointMismatchError,
    TrainingModeWarning,
)
from .generation import CausalLM, generate
from .layout import LAYOUTS, set_layout

# (model_type, transformers class name) -> builder(model, class name, **options)
SUPPORTED = {
    **{("distilbert", name): distilbert.from_hf for name in distilbert.HEADS},
    **{("bert", name): bert.from_hf for name in bert.HEADS},
    **{("roberta", name): roberta.from_hf for name in roberta.HEADS},
    **{("xlm-roberta", name): roberta.from_hf for name in roberta.XLM_HEADS},  # RoBERTa's architecture
    **{(t, name): llama.from_hf for t in llama.FAMILIES for name in llama.architectures(t)},
}
# Families with a KV cache: the only ones that take the decoder options of optimize().
DECODER_TYPES = frozenset(llama.FAMILIES)


class UnsupportedModelError(ValueError):
    """``optimize`` got a model type or head it does not implement (the message lists what it does)."""


def supported_models() -> dict[str, list[str]]:
    """Supported transformers classes by model type."""
    table: dict[str, list[str]] = {}
    for model_type, name in SUPPORTED:
        table.setdefault(model_type, []).append(name)
    return table


def optimize(model: nn.Module, *, fp16_safe_eps: bool | float = True,
             query_chunk_size: int | None = None, cache_capacity: int | None = None,
             prefill_length: int | None = None, batch_size: int | None = None) -> nn.Module:
    """The ANE-optimized equivalent of the transformers ``model``, in eval mode.

    Dispatches on ``model.config.model_type`` and the model's class (or the nearest supported base
    class). ``fp16_safe_eps``: True (default) raises LayerNorm eps below ``FP16_SAFE_LAYER_NORM_EPS``
    (2**-23) to it, since eps such as BERT's 1e-12 underflow in fp16; a float sets another floor;
    False keeps the checkpoint's eps. The choice is recorded in ``result.ane_config``.
    ``query_chunk_size`` splits attention queries into chunks of that length (long sequences).
    Decoders only: ``cache_capacity`` (KV cache slots, default min(max_position_embeddings, 1024)),
    ``prefill_length`` (most tokens per call, default min(capacity, 256)), ``batch_size`` (default 1).

    A model in training mode gives a ``TrainingModeWarning``; the input model is never changed.
    Raises ``UnsupportedModelError`` for other model types or heads, ``CheckpointMismatchError`` if
    the state dict has missing or unexpected keys, ``ValueError`` for unsupported config options.
    """
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if not isinstance(model, nn.Module) or model_type is None:
        raise UnsupportedModelError(
            f"optimize: expected a transformers model instance (an nn.Module with a config), got "
            f"{type(model).__name__}; supported: {_describe_supported()}"
        )
    names = [cls.__name__ for cls in type(model).__mro__]
    architecture = next((n for n in names if (model_type, n) in SUPPORTED), None)
    if model_type in roberta.DIFFERENT:
        raise UnsupportedModelError(
            f"optimize: unsupported model {type(model).__name__} (model_type {model_type!r}): "
            f"{roberta.DIFFERENT[model_type]}; supported: {_describe_supported()}"
        )
    if architecture is None:
        raise UnsupportedModelError(
            f"optimize: unsupported model {type(model).__name__} (model_type {model_type!r}); "
            f"supported: {_describe_supported()}"
        )
    decoder_options = dict(cache_capacity=cache_capacity, prefill_length=prefill_length,
                           batch_size=batch_size)
    if model_type in DECODER_TYPES:
        return SUPPORTED[(model_type, architecture)](model, architecture, fp16_safe_eps=fp16_safe_eps,
                                                      query_chunk_size=query_chunk_size, **decoder_options)
    given = sorted(k for k, v in decoder_options.items() if v is not None)
    if given:
        raise ValueError(f"optimize: {given} apply to decoders with a KV cache ({sorted(DECODER_TYPES)}), "
                         f"got a {model_type!r} model")
    return SUPPORTED[(model_type, architecture)](model, architecture, fp16_safe_eps=fp16_safe_eps,
                                                  query_chunk_size=query_chunk_size)


def hidden_states_to_bsc(hidden_states: torch.Tensor) -> torch.Tensor:
    """ANE hidden states (B, C, 1, S) -> transformers' (B, S, C) (a view, no copy)."""
    return from_bc1s(hidden_states)


def _describe_supported() -> str:
    return "; ".join(f"{t}: {', '.join(names)}" for t, names in supported_models().items())


__all__ = [
    "ANEConfig",
    "CausalLM",
    "CheckpointMismatchError",
    "FP16_SAFE_LAYER_NORM_EPS",
    "LAYOUTS",
    "SUPPORTED",
    "TrainingModeWarning",
    "UnsupportedModelError",
    "generate",
    "hidden_states_to_bsc",
    "optimize",
    "reference",
    "set_layout",
    "supported_models",
]
