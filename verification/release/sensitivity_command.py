"""``ane-verify sensitivity MODEL --config palettize:4 [--target-psnr DB]``: convert once, rank the layers
by the dB compressing each alone costs, optionally search a mixed-bit recipe; print the ranking and write
sensitivity.json (the recipe in its TOML form beside it) and sensitivity.html."""

from __future__ import annotations

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
        "--config", required=True, metavar="CONFIG", help="e.g. palettize:4, quantize:int4:block=32"
    )
    parser.add_argument("--target-psnr", type=float, metavar="DB", help="search a mixed recipe meeting this")
    parser.add_argument(
        "--fallback", metavar="CONFIG", help="config of the sensitive layers (default: 8 bits)"
    )
    parser.add_argument(
        "--by", choices=("weight", "layer"), default="weight", help="one weight or one encoder layer"
    )
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--examples", type=int, default=2, help="inputs the PSNR is measured over")
    parser.add_argument("--out", default="ane-verify-out", metavar="DIR")
    parser.set_defaults(handler=cmd_sensitivity)


def _toml(recipe) -> str:
    lines = ["[compression]", f'default = "{recipe.default.text()}"', "", "[compression.layers]"]
    lines += [f'"{name}" = "{config.text()}"' for name, config in recipe.layers.items()]
    return "\n".join(lines) + "\n"


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
            (staging / "mixed_recipe.toml").write_text(_toml(result.mixed.recipe))
        for item in staging.iterdir():
            item.replace(out / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _print(data, sys.stdout)
    print(
        f"reports in {out}/: sensitivity.json, sensitivity.html"
        + (", mixed_recipe.toml" if result.mixed else "")
    )
    if result.mixed is not None and not result.mixed.met:
        return EXIT_FAILED
    return EXIT_PASSED


def _print(data: dict, stream) -> None:
    stream.write(
        f"config {data['config']}: uncompressed program {data['baseline_psnr_db']} dB vs torch fp32, "
        f"every layer "
        f"compressed {data['all_compressed_psnr_db']} dB ({data['seconds']} s)\n"
    )
    width = max(len(c["layer"]) for c in data["layers"]) if data["layers"] else 5
    stream.write(f"{'layer'.ljust(width)}  cost (dB)  PSNR (dB)\n")
    for c in data["layers"]:
        stream.write(f"{c['layer'].ljust(width)}  {c['cost_db']:9.2f}  {c['psnr_db']:9.2f}\n")
    mixed = data.get("mixed_bit")
    if mixed:
        stream.write(
            f"mixed-bit: target {mixed['target_psnr_db']} dB, measured {mixed['measured_psnr_db']} dB "
            f"({'met' if mixed['met'] else 'MISSED'}); {len(mixed['fallback_layers'])} layers at "
            f"{mixed['fallback']}; {mixed['stored_bytes']} bytes (all at config {mixed['all_config_bytes']}, "
            f"all at fallback {mixed['all_fallback_bytes']})\n"
        )
