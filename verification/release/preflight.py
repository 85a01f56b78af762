"""Everything about ``ane-verify run`` that its arguments decide, checked before anything is built,
converted or written: a bad option costs a second, not the minutes of a conversion.

``plan(options)`` refuses (``ModelInputError``: one line naming the option, the value and what is
allowed) or returns the ``Plan`` the stages follow: which architecture is built from where, the
inputs, and a rough estimate of the run's time and memory from the model's config.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import checkpoint_files as model_zoo  # the light half: nothing here imports torch
from . import estimate
from .checkpoint_files import ModelInputError

if TYPE_CHECKING:
    from .context import RunOptions

PRECISIONS = ("fp16", "fp32")
BACKENDS = ("auto", "coreml", "mil")
EXPORTERS = ("trace", "export")


@dataclass
class Plan:
    """What a run will build and feed, decided from its arguments alone."""

    family: str
    architecture: str
    source: str  # the checkpoint directory, or model_zoo.SEEDED_SOURCE
    max_seq_len: int
    batch_size: int
    checkpoint: model_zoo.Checkpoint | None = None
    tokenizer: Any = None  # loaded here when --text needs it
    texts: list[str] = field(default_factory=list)
    estimate: estimate.Estimate | None = None

    def to_dict(self, inputs: str) -> dict:
        """The report's ``source`` section."""
        return {
            "architecture": self.architecture,
            "checkpoint": self.source,
            "seed": model_zoo.SEED,
            "inputs": inputs,
        }


def _choice(option: str, value, allowed) -> None:
    if value not in allowed:
        raise ModelInputError(f"{option}: expected one of {', '.join(allowed)}, got {value!r}")


def check_backend(backend: str, system: str | None = None) -> None:
    system = system or platform.system()
    if backend == "coreml" and system != "Darwin":
        raise ModelInputError(
            f"--backend coreml: Core ML predictions need macOS, this is {system} {platform.machine()}; "
            "use --backend mil (the MIL reference executor) or auto"
        )


def check_strict(strict: bool, device=None) -> None:
    """``--strict`` where the speed-up cannot be measured would fail by construction: refused up front
    (a stored report can still be gated strictly anywhere with ``ane-verify gate --strict``)."""
    if not strict:
        return
    from ..ondevice.device import detect, measurement_gate

    blocked = measurement_gate(device or detect())
    if blocked is not None:
        raise ModelInputError(
            f"--strict: the speed-up checks cannot be measured here ({blocked}), so a strict run would "
            "fail them; run without --strict (they are reported as not measured) or on an in-spec Mac"
        )


def check_output_target(out: Path) -> None:
    """``--out`` can be created (or used) here; nothing is created yet."""
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise ModelInputError(f"--out: {str(out)!r} exists and is not a directory")
        if not os.access(out, os.W_OK | os.X_OK):
            raise ModelInputError(f"--out: {str(out)!r} is not writable")
        return
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ModelInputError(f"--out: cannot create {str(out)!r} ({str(parent)!r} is not writable)")


def _check_sizes(options: RunOptions) -> None:
    if not isinstance(options.seq_len, int) or options.seq_len < 1:
        raise ModelInputError(f"--seq-len: expected a length of at least 1, got {options.seq_len}")
    if not isinstance(options.batch_size, int) or options.batch_size < 1:
        raise ModelInputError(f"--batch-size: expected at least 1, got {options.batch_size}")


def _check_texts(options: RunOptions, family: str, checkpoint) -> None:
    texts = list(options.texts)
    if not texts:
        return
    if checkpoint is None:
        what = "torch.nn.Transformer takes no tokens" if family == "reference" else "seeded random weights"
        raise ModelInputError(
            f"--text: the embedded {family} model has no tokenizer ({what}); give --weights DIR of a "
            f"checkpoint with a tokenizer ({' or '.join(model_zoo.TOKENIZER_FILES)})"
        )
    if not checkpoint.tokenizer:
        raise ModelInputError(
            f"--text: the checkpoint {str(checkpoint.path)!r} has no tokenizer (no "
            f"{' or '.join(model_zoo.TOKENIZER_FILES)}); run without --text (random token ids)"
        )
    for index, text in enumerate(texts):
        if not text.strip():
            raise ModelInputError(f"--text {index + 1}: expected some text, got {text!r}")
    if options.batch_size != len(texts):
        raise ModelInputError(
            f"--batch-size: {options.batch_size} does not match the {len(texts)} --text inputs (one row "
            "each); leave --batch-size out with --text"
        )


def plan(options: RunOptions) -> Plan:
    """The run's plan, or a ``ModelInputError`` for the first argument that cannot work."""
    if options.model is None and options.weights is None:
        raise ModelInputError(f"expected MODEL (one of {', '.join(model_zoo.EMBEDDED)}) or --weights DIR")
    if options.model is not None:
        _choice("MODEL", options.model, model_zoo.EMBEDDED)
    _choice("--precision", options.precision, PRECISIONS)
    _choice("--backend", options.backend, BACKENDS)
    _choice("--exporter", options.exporter, EXPORTERS)
    _check_sizes(options)
    check_backend(options.backend)
    check_strict(options.strict)
    check_output_target(Path(options.out))
    checkpoint = None
    if options.weights is not None:
        checkpoint = model_zoo.inspect_directory(options.weights)
        if options.model is not None and options.model != checkpoint.model_type:
            raise ModelInputError(
                f"MODEL {options.model!r} does not match the checkpoint in --weights (model_type "
                f"{checkpoint.model_type!r})"
            )
        family, architecture = checkpoint.model_type, checkpoint.architecture
        source, longest = str(checkpoint.path.resolve()), checkpoint.max_seq_len
        sizes = checkpoint.config
    else:
        family = options.model
        architecture, source = model_zoo.EMBEDDED_ARCHITECTURES[family], model_zoo.SEEDED_SOURCE
        longest, sizes = model_zoo.embedded_max_positions(family), estimate.EMBEDDED_SIZES[family]
    if options.seq_len > longest:
        raise ModelInputError(
            f"--seq-len: {options.seq_len} exceeds the model's maximum of {longest} positions"
        )
    _check_texts(options, family, checkpoint)
    result = Plan(family, architecture, source, longest, options.batch_size, checkpoint)
    if options.texts:
        assert checkpoint is not None
        from . import model_zoo as builders  # transformers: only when --text needs the tokenizer

        result.tokenizer = builders.load_tokenizer(checkpoint.path)
        result.texts = list(options.texts)
        builders.tokenize(result.tokenizer, result.texts, options.seq_len)  # refuses texts that do not fit
    choices = 2 if architecture.endswith("ForMultipleChoice") else 1
    result.estimate = estimate.estimate(
        family, sizes, options.seq_len, options.batch_size * choices, architecture=architecture
    )
    return result
