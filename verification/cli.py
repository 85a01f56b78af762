"""The ``ane-verify`` command (also ``python -m verification``)."""

from __future__ import annotations

import argparse
import sys


def _layers(args) -> int:
    from .layer_table import layer_table, render

    rows = layer_table(examples=args.examples, names=args.pair or None)
    print(render(rows))
    return 0 if all(r.passed for r in rows) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ane-verify", description="Verify ANE-optimized transformer layers and models against baselines."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    layers = commands.add_parser(
        "layers", help="check every ANE layer against its baseline and print the table"
    )
    layers.add_argument(
        "--examples", type=int, default=20, help="drawn cases per layer pair and precision (default 20)"
    )
    layers.add_argument("--pair", action="append", help="only this layer pair (repeatable)")
    layers.set_defaults(handler=_layers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "examples", 1) < 1:
        parser.error(f"--examples: expected a positive count, got {args.examples}")
    try:
        return args.handler(args)
    except ValueError as error:
        print(f"ane-verify: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
