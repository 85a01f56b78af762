"""Every refusal ``ane-verify run``, ``sensitivity`` and ``gate`` can decide from their arguments and the
files those name, made before torch, coremltools or transformers is imported: exit 2 with one line
naming the option and the file, in a fraction of a second, and nothing written (docs/refusals.md).

The one exception is ``run --text`` with a checkpoint that has a tokenizer: whether the texts fit
``--seq-len`` takes the tokenizer, so transformers is imported for it (still before anything is built).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..compression.recipe import TARGETS, Recipe, RecipeError, check_target, parse_compress
from . import checkpoint_files, decoder_args, gate_config, preflight
from .checkpoint_files import ModelInputError
from .context import RunOptions


def parse_options(compress_text: str | None, target: str | None) -> tuple[Recipe | None, str | None]:
    """The recipe and the deployment target to convert at, checked together (before anything runs)."""
    if compress_text is None:
        if target is not None and target not in TARGETS:
            raise RecipeError(f"--deployment-target {target!r} is not one of {TARGETS}")
        return None, target
    recipe = parse_compress(compress_text)
    target = target or "iOS18"  # coremltools 9's compression ops (per-block int4, grouped palettes)
    check_target(recipe, target)
    return recipe, target


def check_target_options(args) -> None:
    """``--backend``, ``--exporter`` and ``--compress`` belong to the Core ML target; with ``--target coreai``
    they are refused (Core AI runs on its own runtime and converts from torch.export only)."""
    if args.target != "coreai":
        return
    if args.backend != "auto":
        raise ValueError(
            f"--backend {args.backend}: applies to --target coreml; --target coreai runs on Core AI's runtime"
        )
    if args.exporter_given:
        raise ValueError("--exporter: applies to --target coreml; Core AI converts from torch.export only")
    if getattr(args, "compress", None):
        raise ValueError(
            "--compress: applies to --target coreml (Core ML compression); not to --target coreai"
        )


@dataclass
class RunCheck:
    """What ``run``'s arguments decided: the thresholds, and the encoder run's options and plan or the
    causal LM's options."""

    thresholds: Any
    options: Any  # RunOptions, or decoder_args.DecoderOptions
    plan: Any = None  # preflight.Plan (encoders)
    parameters: int | None = None  # the causal LM's, from its config (None: not known before loading)

    @property
    def decoder(self) -> bool:
        return isinstance(self.options, decoder_args.DecoderOptions)


def is_decoder_run(args) -> bool:
    return args.model in decoder_args.DECODER_MODELS or (
        args.weights is not None and decoder_args.is_decoder_checkpoint(args.weights)
    )


def check_run(args) -> RunCheck:
    thresholds = gate_config.resolve(args.config, args.threshold)
    texts = tuple(args.text or ())
    if is_decoder_run(args):
        if args.compress or args.target != "coreml" or args.exporter == "export":
            raise ValueError(
                "causal LMs: expected the Core ML target, the trace exporter and no --compress (torch.export "
                "refuses the cache write at a tensor position; the others are not supported yet)"
            )
        preflight.check_backend(args.backend)
        preflight.check_output_target(Path(args.out))
        options = decoder_args.DecoderOptions(
            model=args.model,
            weights=args.weights,
            cache=args.cache,
            prefill_len=args.prefill_len,
            context=args.context,
            new_tokens=args.new_tokens,
            precision=args.precision,
            backend=args.backend,
            out=Path(args.out),
            strict=args.strict,
            overrides=thresholds,
        )
        weights = decoder_args.inspect_weights(args.weights)
        decoder_args.check_options(options, weights, texts)
        if texts:
            options.text = texts[0]
        return RunCheck(thresholds, options, parameters=weights.parameters)
    recipe, target = parse_options(args.compress, args.deployment_target)
    options = RunOptions(
        model=args.model,
        weights=args.weights,
        seq_len=args.seq_len,
        batch_size=args.batch_size if args.batch_size is not None else (len(texts) or 1),
        precision=args.precision,
        backend=args.backend,
        exporter=args.exporter,
        target=args.target,
        out=Path(args.out),
        strict=args.strict,
        overrides=thresholds,
        texts=texts,
        compress=args.compress,
        deployment_target=target,
        recipe=recipe,
        with_baseline=getattr(args, "with_baseline", False),
    )
    check_target_options(args)
    return RunCheck(thresholds, options, preflight.plan(options))


def check_sensitivity(args) -> tuple:
    """``sensitivity``'s options: the parsed ``--compress-config`` (or its deprecated ``--config``) and
    ``--fallback``."""
    from ..compression.recipe import parse_config
    from .sensitivity_command import compression_config_text

    config = parse_config(compression_config_text(args), "--compress-config")
    fallback = parse_config(args.fallback, "--fallback") if args.fallback else None
    if args.examples < 1:
        raise ModelInputError(f"--examples: expected a positive count, got {args.examples}")
    if args.weights is None and args.model is None:
        raise ModelInputError(
            f"expected MODEL (one of {', '.join(checkpoint_files.EMBEDDED[:3])}) or --weights DIR"
        )
    if args.weights is not None:
        longest = checkpoint_files.inspect_directory(args.weights).max_seq_len
    else:
        longest = checkpoint_files.embedded_max_positions(args.model)
    if args.seq_len < 1:
        raise ModelInputError(f"--seq-len: expected a length of at least 1, got {args.seq_len}")
    if args.seq_len > longest:
        raise ModelInputError(f"--seq-len: {args.seq_len} exceeds the model's maximum of {longest} positions")
    preflight.check_output_target(Path(args.out))
    return config, fallback


def check_gate(args) -> tuple[dict, Any]:
    """``gate``'s report (read and validated) and thresholds."""
    from .reports.schema import read

    return read(args.report), gate_config.resolve(args.config, args.threshold)
