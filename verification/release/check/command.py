"""``ane-verify check PACKAGE --reference REF``: the parser and the command.

Refusals the arguments alone decide (no such package, not an .mlpackage, a reference that is neither a
known name nor a usable checkpoint, a ``--map`` that is not one, an unusable ``--out``) come before torch,
coremltools or transformers is imported; those that need the package's spec (an unmatched name, a layout
that cannot be told, a missing function or state) before anything runs. Both exit 2 in one line.
"""

from __future__ import annotations

import json
from pathlib import Path


def add_parser(commands) -> None:
    check = commands.add_parser(
        "check",
        help="verify a package converted by anyone against the model it was converted from",
        description="Verify an .mlpackage or a Core AI .aimodel, converted by any tool, against its "
        "reference model: parity of every output, fp16 hazards, readiness, the compression it holds; the "
        "same reports as run.",
    )
    check.add_argument(
        "package",
        metavar="PACKAGE",
        help="the .mlpackage (an ML Program) or Core AI .aimodel to verify",
    )
    check.add_argument(
        "--reference",
        required=True,
        metavar="REF",
        help="the model it was converted from: a transformers checkpoint directory, a causal LM's .gguf, "
        "or a model name run knows (distilbert, bert, roberta, smollm2: their seeded weights)",
    )
    check.add_argument(
        "--map",
        metavar="FILE",
        help="TOML: what package names mean where the names cannot tell (docs/check.md)",
    )
    check.add_argument(
        "--text",
        action="append",
        metavar="TEXT",
        help="an input through the reference's tokenizer (repeatable: one row each); default: what run "
        "feeds the same reference",
    )
    check.add_argument(
        "--seq-len", type=int, metavar="N", help="tokens per row where the package's length is flexible"
    )
    check.add_argument(
        "--batch-size", type=int, metavar="N", help="rows where the package's batch is flexible"
    )
    check.add_argument(
        "--compress",
        metavar="CONFIG",
        help="the compression the package was meant to hold (as run --compress: palettize:4, "
        "quantize:int8, ...): every weight is compared with it",
    )
    check.add_argument(
        "--backend",
        choices=("auto", "coreml", "mil"),
        default="auto",
        help="what runs the package: Core ML (macOS), the MIL reference executor (anywhere), or auto "
        "(default %(default)s)",
    )
    decoder = check.add_argument_group("causal LMs (a stateful or prefill/decode package)")
    decoder.add_argument(
        "--prefill-len",
        type=int,
        default=None,
        help="prompt tokens (default: the package's prefill length, at most 64)",
    )
    decoder.add_argument(
        "--new-tokens", type=int, default=16, help="greedy tokens compared (default %(default)s)"
    )
    check.add_argument(
        "--out", default="ane-verify-out", metavar="DIR", help="output directory (default %(default)s)"
    )
    check.add_argument("--quiet", action="store_true", help="no progress on stderr")
    from ..cli import _gate_options

    _gate_options(check)
    check.set_defaults(handler=cmd_check)


class CheckInputError(ValueError):
    """An argument of ``check`` that cannot be used (one line, exit 2)."""


def refuse_early(args) -> None:
    """Every refusal the arguments decide, reading files only."""
    from .map_file import read_map
    from .reference import inspect_reference

    package = Path(args.package)
    if not package.exists():
        raise CheckInputError(
            f"PACKAGE: no such package {args.package!r} (expected an .mlpackage or .aimodel directory)"
        )
    if package.suffix == ".aimodel":
        _refuse_early_aimodel(package, args)
    elif not package.is_dir() or package.suffix != ".mlpackage":
        raise CheckInputError(
            f"PACKAGE: {args.package!r} is not an .mlpackage (Core ML) or .aimodel (Core AI) directory"
        )
    else:
        manifest = package / "Manifest.json"
        try:
            json.loads(manifest.read_text())
        except (OSError, ValueError):
            raise CheckInputError(
                f"PACKAGE: {args.package!r} has no readable Manifest.json (a corrupt package)"
            ) from None
    for name in ("seq_len", "batch_size", "prefill_len"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise CheckInputError(f"--{name.replace('_', '-')}: expected at least 1, got {value}")
    if args.new_tokens < 1:
        raise CheckInputError(f"--new-tokens: expected at least 1, got {args.new_tokens}")
    if args.text and args.batch_size is not None and args.batch_size != len(args.text):
        raise CheckInputError(
            f"--batch-size {args.batch_size}: expected {len(args.text)}, one row per --text"
        )
    read_map(args.map)
    inspect_reference(args.reference)
    if args.compress is not None:
        from ...compression.recipe import parse_compress

        parse_compress(args.compress)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CheckInputError(f"--out: {args.out!r} exists and is not a directory")
    if out.resolve() == package.resolve() or package.resolve() in out.resolve().parents:
        raise CheckInputError(f"--out: {args.out!r} is inside the package; expected a directory of its own")


def _refuse_early_aimodel(package: Path, args) -> None:
    """A Core AI asset: the extra installed, a directory, and no option that only a Core ML package has."""
    from ...coreai.extra import missing_reason

    if not package.is_dir():
        raise CheckInputError(f"PACKAGE: {args.package!r} is not a directory (a Core AI .aimodel is one)")
    reason = missing_reason()
    if reason is not None:
        raise CheckInputError(f"PACKAGE: {args.package!r} is a Core AI asset and {reason}")
    if args.backend != "auto":
        raise CheckInputError(
            f"--backend {args.backend}: a Core AI asset runs on Core AI's runtime only (expected auto)"
        )
    if args.compress is not None:
        raise CheckInputError(
            f"--compress {args.compress}: the compression found is read from Core ML packages only; a "
            "Core AI asset's is not read yet"
        )


def cmd_check(args) -> int:
    from .. import gate_config

    refuse_early(args)  # before torch, coremltools or transformers is imported
    thresholds = gate_config.resolve(args.config, args.threshold)
    from ..cli import _report, _say_threshold_files
    from ..console import Progress
    from .pipeline import STAGES, CheckOptions, run

    options = CheckOptions(
        package=args.package,
        reference=args.reference,
        map=args.map,
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        texts=tuple(args.text or ()),
        backend=args.backend,
        out=Path(args.out),
        strict=args.strict,
        overrides=thresholds,
        compress=args.compress,
        prefill_len=args.prefill_len,
        new_tokens=args.new_tokens,
    )
    progress = Progress(len(STAGES), quiet=args.quiet)
    _say_threshold_files(thresholds, progress)
    return _report(run(options, progress), args)
