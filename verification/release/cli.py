"""The ``ane-verify`` command (also ``python -m verification``).

Exit codes: 0 every gate passed, 1 a gate failed, 2 bad usage or bad input (one line, no traceback;
``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

EXIT_PASSED, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
MODELS = ("distilbert", "bert", "roberta", "reference", "smollm2")


def _quiet_libraries() -> None:
    """Library chatter (conversion progress bars, untested-version notices) would bury the stage display."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    for name in ("coremltools", "transformers", "torch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.simplefilter("ignore")


class Progress:
    """One line per stage on stderr, with its time; on a terminal the line shows while the stage runs."""

    def __init__(self, total: int, stream=None):
        self.total, self.stream = total, stream or sys.stderr
        self.live = self.stream.isatty()

    def __call__(self, index: int, title: str, seconds: float | None) -> None:
        head = f"[{index + 1}/{self.total}] {title}"
        if seconds is None:
            if self.live:
                self.stream.write(f"{head} ...")
                self.stream.flush()
            return
        prefix = "\r" if self.live else ""
        self.stream.write(f"{prefix}{head} {'.' * max(2, 40 - len(head))} {seconds:6.1f} s\n")
        self.stream.flush()


def _verdict(check: dict) -> str:
    if not check["measured"]:
        return "FAILED (strict: not measured)" if check["passed"] is False else "not measured"
    return "passed" if check["passed"] else "FAILED"


def print_checks(checks: list[dict], stream=None) -> None:
    stream = stream or sys.stdout
    rows = [
        (c["name"], str(c["value"] if c["measured"] else "-"), f"{c['threshold']:g}", _verdict(c))
        for c in checks
    ]
    header = ("check", "value", "threshold", "verdict")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        stream.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n")
    for check in checks:
        if not check["measured"]:
            stream.write(f"  {check['name']}: not measured: {check['reason']}\n")


def _format_value(value):
    return f"{value:.4g}" if isinstance(value, float) else value


def cmd_run(args) -> int:
    from . import decoder_zoo, gate_config, pipeline
    from .compression_stage import parse_options

    overrides = gate_config.resolve(args.config, args.threshold)
    if args.model in decoder_zoo.DECODER_MODELS or (
        args.weights is not None and decoder_zoo.is_decoder_checkpoint(args.weights)
    ):
        from . import decoder_pipeline

        if args.compress or args.target != "coreml" or args.exporter == "export":
            raise ValueError(
                "causal LMs: expected the Core ML target, the trace exporter and no --compress (torch.export "
                "refuses the cache write at a tensor position; the others are not supported yet)"
            )
        return _report(
            decoder_pipeline.run(_decoder_options(args, overrides), Progress(len(decoder_pipeline.STAGES))),
            args,
        )
    recipe, target = parse_options(args.compress, args.deployment_target)  # before anything is built
    options = pipeline.RunOptions(
        model=args.model,
        weights=args.weights,
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        precision=args.precision,
        backend=args.backend,
        exporter=args.exporter,
        target=args.target,
        out=Path(args.out),
        strict=args.strict,
        overrides=overrides,
        compress=args.compress,
        deployment_target=target,
        recipe=recipe,
    )
    _check_target_options(args)
    return _report(pipeline.run(options, Progress(len(pipeline.stages_for(args.target)[0]))), args)


def _decoder_options(args, overrides):
    from .decoder_pipeline import DecoderOptions

    return DecoderOptions(
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
        overrides=overrides,
    )


def _report(report, args) -> int:
    checks = [dict(c, value=_format_value(c["value"])) for c in report["checks"]]
    print_checks(checks)
    if "compression" in report["details"]:
        from .compression_stage import print_summary

        print_summary(report["details"]["compression"], sys.stdout)
    config = report["config"]
    print(f"\nmodel {report['model']} | target {config['target']} | runtime {config['runtime']}")
    print(f"reports in {args.out}/")
    for name, path in report["artifacts"].items():
        print(f"  {name}: {path}")
    print("PASSED" if report["passed"] else "FAILED")
    return EXIT_PASSED if report["passed"] else EXIT_FAILED


def _check_target_options(args) -> None:
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


def cmd_gate(args) -> int:
    from . import gate_config
    from .reports.schema import read

    report = read(args.report)
    overrides = gate_config.resolve(args.config, args.threshold)
    judged = [
        gate_config.evaluate(c, overrides.get(c["name"], c["threshold"]), strict=args.strict)
        for c in report["checks"]
    ]
    print_checks([dict(c, value=_format_value(c["value"])) for c in judged])
    passed = not any(c["passed"] is False for c in judged)
    print(f"\nre-evaluated {args.report} ({report['model']}): {'PASSED' if passed else 'FAILED'}")
    return EXIT_PASSED if passed else EXIT_FAILED


def cmd_device(args) -> int:
    from ..ondevice.device import compute_plan_gate, detect, fingerprint, measurement_gate

    device = detect()
    speed_blocked, plan_blocked = measurement_gate(device), compute_plan_gate(device)
    summary: dict[str, Any] = {
        "device": fingerprint(device),
        "speedup_gates": "can run here" if speed_blocked is None else f"not here: {speed_blocked}",
        "placement_gates": "can run here" if plan_blocked is None else f"not here: {plan_blocked}",
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return EXIT_PASSED
    for key, value in summary["device"].items():
        print(f"{key:>18}: {value}")
    print(f"{'speed-up gates':>18}: {summary['speedup_gates']}")
    print(f"{'placement gates':>18}: {summary['placement_gates']}")
    return EXIT_PASSED


def cmd_layers(args) -> int:
    from ..equivalence.layer_table import layer_table, render

    if args.examples < 1:
        raise ValueError(f"--examples: expected a positive count, got {args.examples}")
    rows = layer_table(examples=args.examples, names=args.pair or None)
    print(render(rows))
    return EXIT_PASSED if all(r.passed for r in rows) else EXIT_FAILED


def _gate_options(parser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML file with [tool.ane-verify.thresholds] (default: ./pyproject.toml if present)",
    )
    parser.add_argument(
        "--threshold",
        action="append",
        metavar="NAME=VALUE",
        help="override one check's threshold (repeatable); names as in report.json",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="a check that could not be measured here (no Mac, out-of-spec chip) fails",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ane-verify", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks and library warnings")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="optimize, convert, save and verify a model; write the reports")
    run.add_argument(
        "model",
        nargs="?",
        choices=MODELS,
        help="embedded default (seeded random weights), or omit and give --weights",
    )
    run.add_argument(
        "--weights",
        metavar="PATH",
        help="local transformers checkpoint directory (or a causal LM's .gguf file)",
    )
    run.add_argument("--seq-len", type=int, default=128)
    run.add_argument("--batch-size", type=int, default=1)
    run.add_argument("--precision", choices=("fp16", "fp32"), default="fp16")
    run.add_argument("--backend", choices=("auto", "coreml", "mil"), default="auto")
    run.add_argument("--exporter", choices=("trace", "export"), default=None)
    run.add_argument(
        "--target",
        choices=("coreml", "coreai"),
        default="coreml",
        help="conversion target: coreml (coremltools, .mlpackage) or coreai (Apple's Core AI, .aimodel; "
        "needs the coreai extra)",
    )
    decoder = run.add_argument_group("causal LMs (smollm2, or --weights of a Llama-family model)")
    decoder.add_argument(
        "--cache",
        choices=("state", "io"),
        default="state",
        help="KV cache as Core ML state (iOS 18) or as inputs and outputs",
    )
    decoder.add_argument("--prefill-len", type=int, default=64, help="tokens the prefill function takes")
    decoder.add_argument("--context", type=int, default=256, help="KV cache capacity (slots)")
    decoder.add_argument("--new-tokens", type=int, default=32, help="greedy tokens generated and compared")
    run.add_argument(
        "--out", default="ane-verify-out", metavar="DIR", help="output directory (default %(default)s)"
    )
    run.add_argument(
        "--compress",
        metavar="CONFIG",
        help="compress the converted program's weights and prove it: palettize:4, quantize:int8, "
        "quantize:int4:block=32, prune:0.5, joint forms with '+', or recipe=FILE (docs/compression.md)",
    )
    run.add_argument(
        "--deployment-target",
        choices=("iOS16", "iOS17", "iOS18"),
        help="minimum deployment target to convert for (default: coremltools'; iOS18 with --compress)",
    )
    _gate_options(run)
    run.set_defaults(handler=cmd_run)

    from .sensitivity_command import add_parser as add_sensitivity

    add_sensitivity(commands)

    gate = commands.add_parser("gate", help="re-evaluate a stored report.json against thresholds")
    gate.add_argument("report", metavar="REPORT.json")
    _gate_options(gate)
    gate.set_defaults(handler=cmd_gate)

    device = commands.add_parser("device", help="print the device spec and whether speed-up gates can run")
    device.add_argument("--json", action="store_true")
    device.set_defaults(handler=cmd_device)

    layers = commands.add_parser("layers", help="check every ANE layer against its baseline; print the table")
    layers.add_argument("--examples", type=int, default=20, help="drawn cases per pair and precision")
    layers.add_argument("--pair", action="append", help="only this layer pair (repeatable)")
    layers.set_defaults(handler=cmd_layers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        args.exporter_given, args.exporter = args.exporter is not None, args.exporter or "trace"
    if not args.debug:
        _quiet_libraries()
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("ane-verify: interrupted; nothing was written", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ValueError, RuntimeError, OSError) as error:
        if args.debug:
            raise
        print(f"ane-verify: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as error:  # an internal failure: still one line unless --debug
        if args.debug:
            raise
        print(
            f"ane-verify: internal error: {type(error).__name__}: {_one_line(error)} (run with --debug "
            "for the traceback)",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
