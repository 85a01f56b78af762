"""The models ``ane-verify run`` knows: embedded default architectures with seeded random weights (no
weights can be downloaded), and local transformers checkpoint directories.

Embedded defaults are sequence classifiers (as in the published DistilBERT case study) with the
architectures of distilbert-base-uncased, bert-base-uncased and roberta-base; ``reference`` is
``torch.nn.Transformer``'s default architecture (6 + 6 layers, 512 wide, 8 heads).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .checkpoint_files import (  # noqa: F401 (the light half: checked before torch is imported)
    EMBEDDED,
    EMBEDDED_ARCHITECTURES,
    SEED,
    SEEDED_SOURCE,
    TOKENIZER_FILES,
    Checkpoint,
    ModelInputError,
    _supported_heads,
    embedded_max_positions,
    inspect_directory,
    max_positions,
    refuse_missing_weights,
)

SENTENCES = (
    "The Neural Engine runs this model in half precision.",
    "Channels go first and the sequence goes last, so every buffer stays packed.",
    "Short one.",
    "A release is gated on parity and on the speed-up measured on an in-spec device.",
)


@dataclass
class ModelPair:
    """A baseline, its ANE-optimized twin, and how to feed both."""

    name: str
    family: str  # distilbert | bert | roberta | xlm-roberta | reference
    # torch modules whose config and sizes are read by attribute (transformers models differ per
    # family, and nn.Module's __getattr__ types every attribute as Tensor | Module)
    baseline: Any
    optimized: Any
    max_seq_len: int
    tokenizer: Any = None
    architecture: str = ""  # the head class that was built (e.g. BertForSequenceClassification)
    source: str = SEEDED_SOURCE  # the checkpoint directory, or SEEDED_SOURCE

    @property
    def choices(self) -> bool:
        """A multiple-choice head: inputs are (B, num_choices, S)."""
        return self.architecture.endswith("ForMultipleChoice")


class TransformerBaseline(torch.nn.Module):
    """``torch.nn.Transformer`` called the way the ANE ``reference`` model is: (src, tgt) in
    (B, C, 1, S), torch-style padding masks (1 = pad), a causal target mask; returns (B, S, C).

    Run and convert it inside ``without_fast_path()``: torch's fused fast path
    (``_transformer_encoder_layer_fwd``) has no coremltools converter, and computes the same math as
    the documented slow path. (The switch cannot sit in ``forward``: torch 2.7's ``torch.export``
    refuses to trace ``set_fastpath_enabled``.)"""

    def __init__(self, transformer: torch.nn.Transformer):
        super().__init__()
        self.transformer = transformer.eval()

    # argument names as TransformerANE's: they name the converted program's inputs
    def forward(self, src, tgt, src_key_padding_mask, tgt_key_padding_mask, memory_key_padding_mask):
        from ane_layers import from_bc1s

        # the causal mask from positions, not from tgt.shape: traced size arithmetic (aten::Int) does
        # not convert
        positions = torch.cumsum(torch.ones_like(tgt_key_padding_mask[0]), dim=0)
        causal = (positions[None, :] > positions[:, None]).to(src.dtype) * torch.finfo(src.dtype).min
        return self.transformer(
            from_bc1s(src),
            from_bc1s(tgt),
            tgt_mask=causal,
            tgt_is_causal=True,
            # float masks like the causal one (torch deprecates mixing bool and float masks)
            src_key_padding_mask=_padding_bias(src_key_padding_mask, src.dtype),
            tgt_key_padding_mask=_padding_bias(tgt_key_padding_mask, src.dtype),
            memory_key_padding_mask=_padding_bias(memory_key_padding_mask, src.dtype),
        )


def _padding_bias(padding: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return padding.to(dtype) * torch.finfo(dtype).min


def _embedded_config(family: str):
    import transformers

    config: Any
    if family == "distilbert":
        config = transformers.DistilBertConfig()
    elif family == "bert":
        config = transformers.BertConfig()
    else:
        config = transformers.RobertaConfig(
            vocab_size=50265,
            max_position_embeddings=514,
            type_vocab_size=1,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            layer_norm_eps=1e-5,
        )
    config.num_labels = 2
    config._attn_implementation = "eager"
    return config


def embedded(family: str, *, optimize: bool = True) -> ModelPair:
    """The embedded default of ``family`` with seeded random weights (``optimize=False``: the baseline
    alone, ``optimized`` None, for ``check``, which judges a package made elsewhere)."""
    import ane_models

    if family not in EMBEDDED:
        raise ModelInputError(f"unknown model {family!r}: expected one of {list(EMBEDDED)} or --weights DIR")
    torch.manual_seed(SEED)
    if family == "reference":
        from ane_models.reference import from_torch_transformer

        baseline = torch.nn.Transformer(dropout=0.0, batch_first=True).eval()
        return ModelPair(
            "reference",
            "reference",
            baseline,
            from_torch_transformer(baseline) if optimize else None,
            10**6,
            architecture=EMBEDDED_ARCHITECTURES["reference"],
        )
    import transformers

    config = _embedded_config(family)
    prefix = {"distilbert": "DistilBert", "bert": "Bert", "roberta": "Roberta"}[family]
    architecture = EMBEDDED_ARCHITECTURES[family]
    assert architecture == f"{prefix}ForSequenceClassification"
    baseline = getattr(transformers, architecture)(config).eval()
    optimized: Any = ane_models.optimize(baseline) if optimize else None
    return ModelPair(
        family,
        family,
        baseline,
        optimized,
        embedded_max_positions(family),
        architecture=architecture,
    )


def from_directory(
    path: str | Path, checkpoint: Checkpoint | None = None, *, optimize: bool = True
) -> ModelPair:
    """A local transformers checkpoint: weights only from safetensors (or torch's weights-only loading),
    never remote code, never the network. The head named in config.json is built, or the directory is
    refused (``inspect_directory``)."""
    import transformers

    import ane_models

    checkpoint = checkpoint or inspect_directory(path)
    path = checkpoint.path
    model_class = getattr(transformers, checkpoint.architecture)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # safetensors when present; else transformers loads the .bin with torch's weights_only=True
            baseline, loading = model_class.from_pretrained(
                path,
                local_files_only=True,
                trust_remote_code=False,
                use_safetensors=checkpoint.safetensors,
                attn_implementation="eager",
                output_loading_info=True,
            )
        except Exception as error:  # a corrupt or truncated weight file
            raise ModelInputError(
                f"--weights: cannot load the weights in {str(path)!r} ({type(error).__name__}: {error})"
            ) from None
        refuse_missing_weights(
            loading,
            path,
            f"the {checkpoint.architecture} weights",
            "every parameter of the head config.json names",
        )
        baseline = baseline.eval()
        optimized: Any = ane_models.optimize(baseline) if optimize else None
    tokenizer = load_tokenizer(path) if checkpoint.tokenizer else None
    return ModelPair(
        str(path),
        checkpoint.model_type,
        baseline,
        optimized,
        checkpoint.max_seq_len,
        tokenizer,
        architecture=checkpoint.architecture,
        source=str(path.resolve()),
    )


def load_tokenizer(path: Path):
    import transformers

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return transformers.AutoTokenizer.from_pretrained(
                path, local_files_only=True, trust_remote_code=False
            )
        except Exception as error:
            raise ModelInputError(
                f"--weights: cannot load the tokenizer in {str(path)!r} ({type(error).__name__}: {error})"
            ) from None


def check_sizes(pair: ModelPair, seq_len: int, batch_size: int) -> None:
    if seq_len < 1:
        raise ModelInputError(f"--seq-len: expected a length of at least 1, got {seq_len}")
    if batch_size < 1:
        raise ModelInputError(f"--batch-size: expected at least 1, got {batch_size}")
    if seq_len > pair.max_seq_len:
        raise ModelInputError(
            f"--seq-len: {seq_len} exceeds the model's maximum of {pair.max_seq_len} positions"
        )


def tokenize(tokenizer, texts: list[str], seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, mask) of ``texts`` padded to ``seq_len``; a text longer than that is refused, never cut."""
    lengths = [len(ids) for ids in tokenizer(list(texts))["input_ids"]]
    for index, (text, length) in enumerate(zip(texts, lengths, strict=True)):
        if length > seq_len:
            raise ModelInputError(
                f"--text {index + 1} ({text[:40]!r}...): {length} tokens do not fit --seq-len {seq_len}; "
                f"give a longer --seq-len or a shorter text"
            )
    batch = tokenizer(list(texts), padding="max_length", max_length=seq_len, return_tensors="pt")
    return batch["input_ids"].to(torch.int32), batch["attention_mask"].to(torch.int32)


def example_inputs(
    pair: ModelPair, seq_len: int, batch_size: int, texts: list[str] | None = None
) -> tuple[torch.Tensor, ...]:
    """int32 inputs in the ane_models calling convention; every row but the first ends in padding.

    ``texts`` (``--text``): those, through the checkpoint's tokenizer, one row each. Else with a tokenizer
    (checkpoint directories), built-in sentences padded to ``seq_len``; otherwise seeded random ids.
    ``reference`` takes (src, tgt) in (B, C, 1, S) and torch-style padding masks (1 = pad). A multiple-
    choice head takes (B, 2, S): the rows twice, as two choices.
    """
    generator = torch.Generator().manual_seed(SEED)
    if pair.family == "reference":
        width = pair.baseline.d_model
        src = torch.randn(batch_size, width, 1, seq_len, generator=generator)
        tgt = torch.randn(batch_size, width, 1, seq_len, generator=generator)
        padding = (~_keep_mask(batch_size, seq_len).bool()).to(torch.int32)
        return src, tgt, padding, torch.zeros_like(padding), padding
    if texts:
        if pair.tokenizer is None:
            raise ModelInputError(f"--text: {pair.name} has no tokenizer")
        ids, mask = tokenize(pair.tokenizer, texts, seq_len)
    elif pair.tokenizer is not None:
        sentences = [SENTENCES[i % len(SENTENCES)] for i in range(batch_size)]
        batch = pair.tokenizer(
            sentences, padding="max_length", truncation=True, max_length=seq_len, return_tensors="pt"
        )
        ids, mask = batch["input_ids"].to(torch.int32), batch["attention_mask"].to(torch.int32)
    else:
        vocab = pair.baseline.config.vocab_size
        ids = torch.randint(3, vocab, (batch_size, seq_len), generator=generator, dtype=torch.int32)
        mask = _keep_mask(batch_size, seq_len)
        pad_id = pair.baseline.config.pad_token_id or 0
        ids = torch.where(mask.bool(), ids, torch.full_like(ids, pad_id))
    if pair.choices:  # two choices per row: the row and the row reversed in its real tokens' order
        ids = torch.stack([ids, _reversed_real(ids, mask)], dim=1)
        mask = torch.stack([mask, mask], dim=1)
    if pair.family == "distilbert":
        return ids, mask
    return ids, mask, torch.zeros_like(ids)


def _reversed_real(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    out = ids.clone()
    for row in range(ids.shape[0]):
        real = mask[row].bool()
        out[row, real] = ids[row, real].flip(0)
    return out


def inputs_source(pair: ModelPair, batch_size: int, texts: list[str] | None = None) -> str:
    """Where a run's inputs came from, for the report."""
    padded = "rows after the first padded in their last quarter"
    if pair.family == "reference":
        return f"random src and tgt (torch.randn, seed {SEED}), {padded}"
    if texts:
        return f"{len(texts)} --text input{'s' if len(texts) > 1 else ''} through the checkpoint's tokenizer"
    if pair.tokenizer is not None:
        plural = "s" if batch_size > 1 else ""
        return f"{batch_size} built-in sentence{plural} through the checkpoint's tokenizer"
    return f"random token ids (seed {SEED}), {padded}"


def _keep_mask(batch_size: int, seq_len: int) -> torch.Tensor:
    """1 = real token: row 0 is unpadded (when batch > 1), the other rows lose their last quarter."""
    mask = torch.ones(batch_size, seq_len, dtype=torch.int32)
    cut = seq_len - max(1, seq_len // 4) if seq_len > 1 else seq_len
    mask[1 if batch_size > 1 else 0 :, cut:] = 0
    return mask
