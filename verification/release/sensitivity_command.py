"""``ane-verify sensitivity MODEL --compress-config palettize:4 [--target-psnr DB]``: convert once, rank the
layers (torch module paths) by the dB compressing each alone costs, optionally search a mixed-bit recipe;
print the ranking and write sensitivity.json, sensitivity.html and mixed_recipe.toml, which
``ane-verify run --compress recipe=FILE`` takes as it is.

``--compress-config`` was ``--config`` in 0.1.0: ``run`` and ``gate`` use ``--config`` for a thresholds
file, which CI scripts pass, so the compression config is the one renamed. ``--config`` still works here
for one release, with a one-line deprecation warning on stderr."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

EXIT_PASSED, EXIT_FAILED = 0, 1


def add_parser(commands) -> None:
    from .cli import MODELS

    parser = commands.add_parser(
        "sensitivity", help="rank layers by the PSNR one compression config costs each; mixed-bit search"
    )
    parser.add_argument("model", nargs="?", choices=MODELS[:3], help="embedded default, or give --weights")
    parser.add_argument("--weights", metavar="DIR", help="local transformers checkpoint directory")
    parser.add_argument(
        "--compress-config",
        metavar="CONFIG",
        help="the compression config every layer is tried at (required): palettize:4, "
        "quantize:int4:block=32, ... as run --compress takes them",
    )
    parser.add_argument("--config", dest="deprecated_config", metavar="CONFIG", help=argparse.SUPPRESS)
    parser.add_argument("--target-psnr", type=float, metavar="DB", help="search a mixed recipe meeting this")
    parser.add_argument(
        "--fallback", metavar="CONFIG", help="config of the sensitive layers (default: 8 bits)"
    )
    parser.add_argument(
        "--by", choices=("weight", "layer"), default="weight", help="one weight or one encoder layer"
    )
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument(
        "--examples",
        type=int,
        default=2,
        help="inputs every PSNR is measured over (default %(default)s; more make small costs less noisy)",
    )
    parser.add_argument("--out", default="ane-verify-out", metavar="DIR")
    parser.set_defaults(handler=cmd_sensitivity)


DEPRECATED_CONFIG = (
    "ane-verify: warning: sensitivity --config is deprecated and will be removed in the next release; "
    "use --compress-config (run and gate keep --config for a thresholds file)"
)


def compression_config_text(args) -> str:
    """The value of --compress-config (or of the deprecated --config, with a warning on stderr)."""
    if args.deprecated_config is not None:
        print(DEPRECATED_CONFIG, file=sys.stderr)
        if args.compress_config is not None and args.compress_config != args.deprecated_config:
            raise ValueError(
                f"--compress-config {args.compress_config} and --config {args.deprecated_config}: give one "
                "(--config is its deprecated spelling)"
            )
    text = args.compress_config or args.deprecated_config
    if text is None:
        raise ValueError("--compress-config: required, e.g. --compress-config palettize:4")
    return text


def _model_option(args) -> str:
    option = f"--weights {args.weights}" if args.weights else args.model
    return option + ("" if args.seq_len == 128 else f" --seq-len {args.seq_len}")


def _run_command(model_option: str, out: Path) -> str:
    return f"ane-verify run {model_option} --compress recipe={out / 'mixed_recipe.toml'}"


def _toml(result, data: dict, model_option: str, out: Path) -> str:
    from ..compression.recipe import recipe_toml

    mixed = result.mixed
    header = (
        f"mixed-bit recipe from ane-verify sensitivity {model_option} --compress-config {data['config']} "
        f"--target-psnr {mixed.target_psnr_db:g}: every weight at {data['config']}, the "
        f"{len(mixed.fallback_layers)} most costly layers at {mixed.fallback}; measured "
        f"{mixed.measured_psnr_db:.2f} dB vs torch fp32 on {data['inputs']} inputs "
        f"({'met' if mixed.met else 'MISSED'}).\nUse it as it is: {_run_command(model_option, out)}"
    )
    cost = {c["layer"]: c["cost_db"] for c in data["layers"]}
    notes = {
        name: f"costs {cost[name]:.2f} dB at {data['config']}" for name in mixed.recipe.layers if name in cost
    }
    return recipe_toml(mixed.recipe, header, notes)


def cmd_sensitivity(args) -> int:
    from .refusals import check_sensitivity

    config, fallback = check_sensitivity(args)  # every option, before torch or coremltools is imported
    import coremltools as ct

    from ..compression.sensitivity import layer_sensitivity
    from ..coreml import convert
    from . import model_zoo
    from . import staging as staging_folder
    from .compression_stage import sensitivity_inputs
    from .pipeline import prepare_output
    from .reports.compression_section import sensitivity_page

    pair = model_zoo.from_directory(args.weights) if args.weights else model_zoo.embedded(args.model)
    model_zoo.check_sizes(pair, args.seq_len, 1)
    examples, feeds, references, reals = sensitivity_inputs(pair, args.seq_len, 1, args.examples)
    mlmodel = convert(
        pair.optimized, examples[0], precision="fp16", minimum_deployment_target=ct.target.iOS18
    )
    result = layer_sensitivity(
        mlmodel,
        config,
        feeds,
        references,
        real_masks=reals,
        by=args.by,
        target_psnr_db=args.target_psnr,
        fallback=fallback,
        model=pair.optimized,
    )
    data = result.to_dict()
    out = Path(args.out)
    prepare_output(out)
    staging = staging_folder.create(out)
    try:
        (staging / "sensitivity.json").write_text(json.dumps(data, indent=2))
        title = f"ane-verify sensitivity: {pair.name} at {config.text()}"
        (staging / "sensitivity.html").write_text(sensitivity_page(data, title))
        if result.mixed is not None:
            (staging / "mixed_recipe.toml").write_text(_toml(result, data, _model_option(args), out))
        for item in staging.iterdir():
            item.replace(out / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _print(data, sys.stdout)
    print(
        f"reports in {out}/: sensitivity.json, sensitivity.html"
        + (", mixed_recipe.toml" if result.mixed else "")
    )
    if result.mixed is not None:
        print(f"next: {_run_command(_model_option(args), out)}")
    if result.mixed is not None and not result.mixed.met:
        return EXIT_FAILED
    return EXIT_PASSED


def _print(data: dict, stream) -> None:
    stream.write(
        f"config {data['config']}: uncompressed program {data['baseline_psnr_db']} dB vs torch fp32, "
        f"every layer compressed {data['all_compressed_psnr_db']} dB ({data['inputs']} inputs, "
        f"{data['seconds']} s)\n"
    )
    mixed = data.get("mixed_bit") or {}
    chosen = mixed.get("layer_configs", {})
    width = max([5, *(len(c["layer"]) for c in data["layers"])])
    header = f"{'layer'.ljust(width)}  cost (dB)  PSNR (dB)  vs uncompressed (dB)"
    stream.write(header + ("  config\n" if chosen else "\n"))
    for c in data["layers"]:
        row = (
            f"{c['layer'].ljust(width)}  {c['cost_db']:9.2f}  {c['psnr_db']:9.2f}  "
            f"{c['psnr_vs_uncompressed_program_db']:20.2f}"
        )
        stream.write(row + (f"  {chosen.get(c['layer'], '')}\n" if chosen else "\n"))
    if data.get("noise_note"):
        stream.write(f"note: {data['noise_note']}\n")
    if mixed:
        stream.write(
            f"mixed-bit: target {mixed['target_psnr_db']} dB, measured {mixed['measured_psnr_db']} dB "
            f"({'met' if mixed['met'] else 'MISSED'}); {len(mixed['fallback_layers'])} layers at "
            f"{mixed['fallback']}; {mixed['stored_bytes']} bytes (all at config {mixed['all_config_bytes']}, "
            f"all at fallback {mixed['all_fallback_bytes']})\n"
        )
