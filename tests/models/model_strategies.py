"""Hypothesis strategies and helpers for the model tests: tiny configs, token batches, comparisons."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import torch
import transformers
from hypothesis import strategies as st

from ane_layers import from_bc1s
from verification.metrics import assert_parity
from verification.thresholds import MODEL_FP32_PSNR_DB

HEADS = ("Model", "ForMaskedLM", "ForSequenceClassification", "ForQuestionAnswering",
         "ForTokenClassification", "ForMultipleChoice")
CLASS_PREFIX = {"distilbert": "DistilBert", "bert": "Bert", "roberta": "Roberta",
                "xlm-roberta": "XLMRoberta"}
ROBERTA_LIKE = ("roberta", "xlm-roberta")  # XLM-RoBERTa is RoBERTa's architecture (ane_models.roberta)
# Longest sequence drawn: enough to cover padding patterns, short enough to keep examples cheap.
MAX_DRAWN_LENGTH = 24


def hf_class(family: str, head: str):
    return getattr(transformers, CLASS_PREFIX[family] + head)


@st.composite
def small_configs(draw, family: str, head: str = "Model", *, head_dims=(4, 16), min_heads: int = 1,
                  initializer_ranges=None):
    """A tiny transformers config of ``family``: 1-3 layers, 1-4 heads of width ``head_dims``, eager
    attention, weights drawn with std ``initializer_range`` (0.1 to 0.2 unless given: at transformers'
    default 0.02 a tiny model's attention is nearly uniform, and swapping two layers' query weights moves
    its outputs only to ~95 dB, past a 90 dB gate; test_seeded_draws.py measures it)."""
    layers = draw(st.integers(1, 3))
    heads = draw(st.integers(min_heads, 4))
    hidden = heads * draw(st.integers(*head_dims))
    intermediate = draw(st.integers(4, 64))
    vocab = draw(st.integers(30, 200))
    max_positions = draw(st.integers(8, 64))
    activation = draw(st.sampled_from(["gelu", "relu", "gelu_new"]))
    num_labels = 2 if head == "ForQuestionAnswering" else draw(st.integers(1, 5))
    init = draw(st.floats(0.1, 0.2) if initializer_ranges is None else initializer_ranges)
    common = dict(vocab_size=vocab, max_position_embeddings=max_positions, num_labels=num_labels,
                  initializer_range=init,
                  attn_implementation="eager")
    if family == "distilbert":
        return transformers.DistilBertConfig(dim=hidden, n_heads=heads, n_layers=layers,
                                             hidden_dim=intermediate, activation=activation, **common)
    pad = draw(st.integers(0, 3))
    if family in ROBERTA_LIKE:
        # Positions run from pad + 1 to pad + S: leave room for at least one token.
        max_positions = max(max_positions, pad + 2)
        common["max_position_embeddings"] = max_positions
    config_class = {"bert": transformers.BertConfig, "roberta": transformers.RobertaConfig,
                    "xlm-roberta": transformers.XLMRobertaConfig}[family]
    return config_class(hidden_size=hidden, num_attention_heads=heads, num_hidden_layers=layers,
                        intermediate_size=intermediate, hidden_act=activation, pad_token_id=pad,
                        type_vocab_size=draw(st.integers(1, 3)), **common)


def randomize_parameters(model: torch.nn.Module, seed: int, *, scale: float = 0.2) -> torch.nn.Module:
    """Every parameter drawn away from its init, seeded: transformers (and torch.nn) initialize norm
    weights to 1 and biases to 0, so at the init two norms of a layer are the same function and a model
    that swaps them passes; and a padding embedding row of 0 hides a lookup that confuses it. Every 1-D
    parameter (norm weights and biases, linear and attention biases) gets ``scale`` x N(0, 1) added
    (norm weights become 1 + noise), and every embedding's padding row gets values like its other rows.
    Matrices keep their random init."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, parameter in sorted(model.named_parameters()):
            if parameter.dim() == 1:
                noise = torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype)
                parameter.add_(scale * noise)
        for _, module in sorted(model.named_modules(), key=lambda item: item[0]):
            if isinstance(module, torch.nn.Embedding) and module.padding_idx is not None:
                rows = module.weight
                std = float(rows.std()) or 0.02
                noise = torch.randn(rows.shape[1], generator=generator, dtype=rows.dtype)
                rows[module.padding_idx] = std * noise
    return model


def max_tokens(config) -> int:
    """Longest sequence the model accepts (RoBERTa's positions start after the padding index)."""
    if config.model_type in ROBERTA_LIKE:
        return config.max_position_embeddings - config.pad_token_id - 1
    return config.max_position_embeddings


@dataclass
class TokenBatch:
    input_ids: torch.Tensor  # (B, S), or (B, num_choices, S) for multiple choice
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor | None

    @property
    def real_rows(self) -> torch.Tensor:
        """(B,) or (B, num_choices): True for sequences with at least one attended token."""
        return self.attention_mask.bool().any(dim=-1)

    def describe(self) -> str:
        rows = self.attention_mask.flatten(0, -2).sum(dim=-1).tolist()
        return (f"ids {tuple(self.input_ids.shape)} {self.input_ids.dtype}, real tokens per row {rows}, "
                f"token types {'yes' if self.token_type_ids is not None else 'no'}")


def padding_masks(batch: int, length: int, *, allow_fully_padded: bool):
    """(batch, length) keep masks: per row no padding, right padding, random holes, or (optionally)
    nothing at all."""
    kinds = ["none", "right", "holes"] + (["fully_padded"] if allow_fully_padded else [])

    @st.composite
    def row(draw):
        kind = draw(st.sampled_from(kinds))
        if kind == "none":
            return [1] * length
        if kind == "fully_padded":
            return [0] * length
        if kind == "right":
            real = draw(st.integers(1, length))
            return [1] * real + [0] * (length - real)
        bits = draw(st.lists(st.integers(0, 1), min_size=length, max_size=length))
        bits[draw(st.integers(0, length - 1))] = 1
        return bits

    return st.lists(row(), min_size=batch, max_size=batch).map(lambda rows: torch.tensor(rows))


@st.composite
def token_batches(draw, config, *, choices: bool = False, allow_fully_padded: bool = True,
                  min_length: int = 1):
    """Ids, mask (and token types for BERT/RoBERTa) for ``config``; padded positions usually hold the
    padding token; the padding token may also appear among real tokens (it moves RoBERTa positions)."""
    batch = draw(st.integers(1, 3))
    n_choices = draw(st.integers(1, 3)) if choices else 1
    length = draw(st.integers(min(min_length, max_tokens(config)), min(max_tokens(config), MAX_DRAWN_LENGTH)))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    rows = batch * n_choices
    ids = torch.randint(0, config.vocab_size, (rows, length), generator=generator)
    mask = draw(padding_masks(rows, length, allow_fully_padded=allow_fully_padded))
    pad = config.pad_token_id
    if draw(st.booleans()):
        ids = torch.where(mask.bool(), ids, torch.full_like(ids, pad))
    if draw(st.booleans()):
        sprinkle = torch.rand(ids.shape, generator=generator) < 0.2
        ids = torch.where(sprinkle, torch.full_like(ids, pad), ids)
    token_types = None
    if config.model_type != "distilbert" and draw(st.booleans()):
        token_types = torch.randint(0, config.type_vocab_size, (rows, length), generator=generator)
    ids = ids.to(draw(st.sampled_from([torch.int64, torch.int32])))
    if draw(st.booleans()):
        mask = mask.bool()
    if choices:
        ids, mask = ids.unflatten(0, (batch, n_choices)), mask.unflatten(0, (batch, n_choices))
        token_types = token_types.unflatten(0, (batch, n_choices)) if token_types is not None else None
    return TokenBatch(ids, mask, token_types)


def describe_config(config) -> str:
    keys = ("model_type", "vocab_size", "max_position_embeddings", "pad_token_id", "type_vocab_size",
            "num_labels", "initializer_range", "dim", "n_heads", "n_layers", "hidden_dim", "activation",
            "hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size", "hidden_act")
    return ", ".join(f"{k}={getattr(config, k)!r}" for k in keys if hasattr(config, k))


def run_hf(model, batch: TokenBatch):
    kwargs = dict(attention_mask=batch.attention_mask.long(), return_dict=False)
    if batch.token_type_ids is not None:
        kwargs["token_type_ids"] = batch.token_type_ids
    with torch.no_grad():
        return model(batch.input_ids.long(), **kwargs)


def run_ane(model, batch: TokenBatch):
    args = (batch.input_ids, batch.attention_mask)
    if batch.token_type_ids is not None:
        args += (batch.token_type_ids,)
    with torch.no_grad():
        return model(*args)


def assert_outputs_match(reference, outputs, batch: TokenBatch, *, name: str, context: str, seed=None,
                         min_psnr_db: float = MODEL_FP32_PSNR_DB) -> list[float]:
    """Every output of the ANE model against transformers', on the sequences that have at least one
    real token (fully padded rows differ by design: finite sentinel vs finfo.min); all outputs must be
    finite everywhere. Returns the PSNR of each compared output."""
    if len(outputs) != len(reference):
        raise AssertionError(f"{name}: {len(outputs)} outputs, transformers gives {len(reference)}"
                             f"\n  {context}")
    keep = batch.real_rows
    results = []
    for index, (ref, out) in enumerate(zip(reference, outputs, strict=True)):
        label = f"{name} output {index}"
        if out.dim() == 4:  # hidden states: (B, C, 1, S) -> (B, S, C)
            out = from_bc1s(out)
        if tuple(out.shape) != tuple(ref.shape):
            raise AssertionError(f"{label}: shape {tuple(out.shape)}, transformers {tuple(ref.shape)}"
                                 f"\n  {context}")
        n_bad = int((~torch.isfinite(out)).sum())
        if n_bad:
            raise AssertionError(f"{label}: {n_bad} non-finite values of {out.numel()}\n  {context}")
        if not bool(keep.any()):
            continue
        result = assert_parity(ref[keep], out[keep], min_psnr_db=min_psnr_db, name=label, seed=seed,
                               context=context)
        results.append(result.psnr_db)
        _log_psnr(label, result.psnr_db)
    return results


def _log_psnr(label: str, value: float) -> None:
    """Append to $ANE_MODELS_PSNR_LOG when set (to report the worst PSNR of a run)."""
    path = os.environ.get("ANE_MODELS_PSNR_LOG")
    if path:
        with open(path, "a") as log:
            log.write(json.dumps({"name": label, "psnr_db": value}) + "\n")
