"""The ``ane-verify`` command (also ``python -m verification``).

Exit codes: 0 every gate passed, 1 a gate failed, 2 bad usage or bad input (one line, no traceback;
``--debug`` shows it).

Every error the arguments alone decide (sizes, backend, ``--strict`` where nothing can be timed, the
checkpoint's files and head, ``--text`` without a tokenizer, ``--out``) is reported before anything is
built (``preflight.plan``). Options are added per command in ``build_parser``: one ``add_argument`` each,
with its help and default.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any

EXIT_PASSED, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
MODELS = ("distilbert", "bert", "roberta", "reference", "smollm2")


class UsageError(ValueError):
    """A command line argparse refused (reported in one line, exit 2)."""


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line (``main`` prints it) instead of usage + exit,
    and lists allowed values as words, not Python reprs."""

    def error(self, message: str):
        message = re.sub(
            r"\(choose from (.*)\)$",
            lambda m: f"(expected one of {m.group(1).replace(chr(39), '')})",
            message,
        )
        message = re.sub(r"^argument ([^:]+): ", lambda m: f"{m.group(1).split('/')[-1]}: ", message)
        raise UsageError(f"{message} (see {self.prog} --help)")


class LazyChoices:
    """Allowed values that are looked up only when argparse checks a value or prints help (the layer pair
    registry imports torch: ``ane-verify gate`` and ``--version`` need not)."""

    def __init__(self, load):
        self._load, self._values = load, None

    def _all(self) -> list[str]:
        if self._values is None:
            self._values = list(self._load())
        return self._values

    def __contains__(self, value) -> bool:
        return value in self._all()

    def __iter__(self):
        return iter(self._all())


class VersionAction(argparse.Action):
    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="print the version and git commit, then exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from .reports.provenance import describe, tool_section

        print(describe(tool_section()))
        parser.exit(EXIT_PASSED)


def _quiet_libraries() -> None:
    """Library chatter (conversion progress bars, untested-version notices) would bury the stage display."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    for name in ("coremltools", "transformers", "torch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.simplefilter("ignore")


def _format_value(value):
    return f"{value:.4g}" if isinstance(value, float) else value


def _say_threshold_files(thresholds, progress) -> None:
    """Thresholds read from a file change verdicts: say which, and from where, before anything runs."""
    by_file: dict[str, list[str]] = {}
    for name in thresholds:
        source = thresholds.source(name)
        if source not in ("default", "--threshold"):
            by_file.setdefault(source, []).append(f"{name} = {thresholds[name]:g}")
    for path, entries in by_file.items():
        progress.note(f"thresholds from {path} [tool.ane-verify.thresholds]: {', '.join(entries)}")


def cmd_run(args) -> int:
    from .console import Progress
    from .refusals import check_run

    checked = check_run(args)  # every refusal the arguments decide: nothing heavy is imported before
    if args.no_cache:
        os.environ["ANE_VERIFY_CACHE"] = "off"  # read by verification.coreml.program_cache at each lookup
    if checked.decoder:
        from . import decoder_pipeline

        progress = Progress(len(decoder_pipeline.STAGES), quiet=args.quiet)
        _say_threshold_files(checked.thresholds, progress)
        return _run_decoder(checked, progress, args)
    from . import pipeline

    options, plan = checked.options, checked.plan
    progress = Progress(len(pipeline.stages_for(args.target)[0]), quiet=args.quiet)
    _say_threshold_files(checked.thresholds, progress)
    subject = f"{plan.architecture} at --seq-len {options.seq_len} --batch-size {options.batch_size}"
    run = functools.partial(pipeline.run, options, progress, plan=plan, step=progress.step)
    return _report(_estimated_run(f"run {args.target} encoder", plan.estimate, subject, run, progress), args)


def _run_decoder(checked, progress, args) -> int:
    """A causal LM's run, estimated up front when its config gives the parameter count."""
    from . import decoder_pipeline
    from .estimate import decoder_estimate

    parameters, estimate, subject = checked.parameters, None, ""
    if parameters is not None:
        estimate = decoder_estimate(parameters)
        subject = f"{parameters / 1e6:.0f}M parameters" if parameters >= 1e7 else f"{parameters:,} parameters"
    run = functools.partial(decoder_pipeline.run, checked.options, progress)
    return _report(_estimated_run("run coreml decoder", estimate, subject, run, progress), args)


def _estimated_run(kind: str, estimate, subject: str, run, progress) -> dict:
    """``run()``'s report, its estimate (None: none) said first, calibrated on this machine's earlier runs
    of ``kind`` (a warning when large), and what it measured recorded for the next one."""
    from .run_history import calibrated, record

    if estimate is not None:
        expected, how = calibrated(kind, estimate)
        warning = "this run will take long: " if expected.large else ""
        progress.note(f"{warning}{subject}: {expected.describe()} ({how})")
    start = time.perf_counter()
    report = run()
    if estimate is not None:
        peak = report["details"].get("memory", {}).get("peak_mb")
        record(kind, estimate, time.perf_counter() - start, None if peak is None else peak * 1e6)
    return report


def _report(report, args) -> int:
    from .console import print_checks

    checks = [dict(c, value=_format_value(c["value"])) for c in report["checks"]]
    print_checks(checks)
    if "compression" in report["details"]:
        from .compression_stage import print_summary

        print_summary(report["details"]["compression"], sys.stdout)
    config, source = report["config"], report.get("source")
    if "decoder" in report["details"]:
        from .reports.decoder_sections import constants_summary, generation_summary, speed_summary

        summary = generation_summary(report["details"]["decoder"])
        if summary:
            print(f"\ngenerated: {summary}")
        counted = report["details"].get("fp16_unrepresentable_constants") or []
        for line in constants_summary(report["details"]) if counted else []:
            print(f"fp16 constant: {line}")
        if speed_summary(report["details"]):
            print(speed_summary(report["details"]))
    print()
    if source:
        seed = "" if source.get("seed") is None else f" (seed {source['seed']})"
        print(f"model    {source['architecture']} from {source['checkpoint']}{seed}")
        print(f"inputs   {source['inputs']}")
    else:
        print(f"model    {report['model']}")
    print(f"target   {config.get('target', 'coreml')} | runtime {config.get('runtime', config['backend'])}")
    print(f"reports in {args.out}/")
    for name, path in report["artifacts"].items():
        print(f"  {name}: {path}")
    print("PASSED" if report["passed"] else "FAILED")
    return EXIT_PASSED if report["passed"] else EXIT_FAILED


def cmd_gate(args) -> int:
    from . import gate_config
    from .console import print_checks
    from .refusals import check_gate

    report, thresholds = check_gate(args)
    names = {c["name"] for c in report["checks"]}
    unused = sorted(set(thresholds) - names)
    if unused:
        print(f"ane-verify: note: no check in {args.report} is named {', '.join(unused)}", file=sys.stderr)
    judged = []
    for check in report["checks"]:
        if check["name"] in thresholds:
            threshold, source = thresholds[check["name"]], thresholds.source(check["name"])
        else:  # the stored threshold, from wherever the report says it came
            threshold, source = check["threshold"], check.get("threshold_source", "the report")
        judged.append(gate_config.evaluate(check, threshold, strict=args.strict, source=source))
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


def _pair_names() -> list[str]:
    from ..equivalence.pairs import REGISTRY

    return sorted(REGISTRY)


def cmd_layers(args) -> int:
    from ..equivalence.layer_table import measure, render
    from ..equivalence.pairs import REGISTRY
    from .console import Progress

    if args.examples < 1:
        raise UsageError(f"--examples: expected a positive count, got {args.examples}")
    names = list(dict.fromkeys(args.pair)) if args.pair else sorted(REGISTRY)
    progress = Progress(1, quiet=args.quiet)
    progress(0, "layer pairs", None)
    rows = []
    for done, name in enumerate(names):
        progress.step(name, done, len(names))
        rows.append(measure(REGISTRY[name], args.examples))
    progress.step("done", len(names), len(names))
    if progress.live:
        progress.stream.write("\r\x1b[K")
    print(render(rows))
    return EXIT_PASSED if all(r.passed for r in rows) else EXIT_FAILED


def _gate_options(parser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML file with [tool.ane-verify.thresholds] (default: ./pyproject.toml if it has that table; "
        "the output and the report name the file each threshold came from)",
    )
    parser.add_argument(
        "--threshold",
        action="append",
        metavar="NAME=VALUE",
        help="override one check's threshold (repeatable; wins over the file); NAME as in report.json",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="a check that could not be measured fails (run: refused where the speed-up cannot be "
        "measured, since every strict run would fail there; gate: any stored report)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="ane-verify", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action=VersionAction)
    parser.add_argument("--debug", action="store_true", help="show tracebacks and library warnings")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    run = commands.add_parser(
        "run",
        help="optimize, convert, save and verify a model; write the reports",
        description="Optimize, convert, save and verify a model; write report.json/.md/.html and junit.xml.",
    )
    run.add_argument(
        "model",
        nargs="?",
        choices=MODELS,
        metavar="MODEL",
        help=f"an embedded default with seeded random weights ({', '.join(MODELS)}); or omit it and "
        "give --weights",
    )
    run.add_argument(
        "--weights",
        metavar="PATH",
        help="a local transformers checkpoint directory (or a causal LM's .gguf file)",
    )
    run.add_argument(
        "--text",
        action="append",
        metavar="TEXT",
        help="an input through the checkpoint's tokenizer (repeatable: one row each; the batch size is "
        "their count); default: random token ids, or built-in sentences where the checkpoint has a tokenizer",
    )
    run.add_argument(
        "--seq-len", type=int, default=128, metavar="N", help="tokens per row (default %(default)s)"
    )
    run.add_argument(
        "--batch-size",
        type=int,
        default=None,
        metavar="N",
        help="rows per batch (default 1, or the number of --text)",
    )
    run.add_argument(
        "--precision",
        choices=("fp16", "fp32"),
        default="fp16",
        help="compute precision of the converted program (default %(default)s)",
    )
    run.add_argument(
        "--backend",
        choices=("auto", "coreml", "mil"),
        default="auto",
        help="what runs the converted program: Core ML (macOS), the MIL reference executor (anywhere), "
        "or auto: Core ML where it runs (default %(default)s)",
    )
    run.add_argument(
        "--exporter",
        choices=("trace", "export"),
        default=None,
        help="how torch hands the model to coremltools: torch.jit.trace or torch.export (default trace)",
    )
    run.add_argument(
        "--target",
        choices=("coreml", "coreai"),
        default="coreml",
        help="conversion target: coreml (coremltools, .mlpackage) or coreai (Apple's Core AI, .aimodel; "
        "needs the coreai extra) (default %(default)s)",
    )
    decoder = run.add_argument_group("causal LMs (smollm2, or --weights of a Llama-family model)")
    decoder.add_argument(
        "--cache",
        choices=("state", "io"),
        default="state",
        help="KV cache as Core ML state (iOS 18) or as inputs and outputs (default %(default)s)",
    )
    decoder.add_argument(
        "--prefill-len", type=int, default=64, help="tokens the prefill function takes (default %(default)s)"
    )
    decoder.add_argument(
        "--context", type=int, default=256, help="KV cache capacity, slots (default %(default)s)"
    )
    decoder.add_argument(
        "--new-tokens",
        type=int,
        default=32,
        help="greedy tokens generated and compared (default %(default)s)",
    )
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
    run.add_argument(
        "--with-baseline",
        action="store_true",
        help="convert the transformers baseline too where no check reads it (off a Mac: for the report's "
        "op-count comparison); on a Mac it is always converted, for speedup_vs_baseline",
    )
    run.add_argument(
        "--no-cache",
        action="store_true",
        help="convert even when the program cache holds the same graph, weights, options and versions "
        "($ANE_VERIFY_CACHE: its directory, or off; default ~/.cache/ane-verify/programs)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress on stderr")
    _gate_options(run)
    run.set_defaults(handler=cmd_run)

    from .sensitivity_command import add_parser as add_sensitivity

    add_sensitivity(commands)
    from .check.command import add_parser as add_check

    add_check(commands)

    gate = commands.add_parser(
        "gate",
        help="re-evaluate a stored report.json against thresholds",
        description="Re-evaluate a stored report.json (from run or pytest --ane-report) against thresholds; "
        "the report is never edited.",
    )
    gate.add_argument("report", metavar="REPORT.json", help="a report written by ane-verify or --ane-report")
    _gate_options(gate)
    gate.set_defaults(handler=cmd_gate)

    device = commands.add_parser("device", help="print the device spec and whether speed-up gates can run")
    device.add_argument("--json", action="store_true", help="print it as JSON")
    device.set_defaults(handler=cmd_device)

    layers = commands.add_parser("layers", help="check every ANE layer against its baseline; print the table")
    layers.add_argument(
        "--examples",
        type=int,
        default=20,
        metavar="N",
        help="drawn cases per pair and precision (default %(default)s)",
    )
    layers.add_argument(
        "--pair",
        action="append",
        choices=LazyChoices(_pair_names),
        metavar="NAME",
        help="only this layer pair (repeatable; default: all): %(choices)s",
    )
    layers.add_argument("--quiet", action="store_true", help="no progress on stderr")
    layers.set_defaults(handler=cmd_layers)
    return parser


def main(argv: list[str] | None = None) -> int:
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except UsageError as error:
        if debug:
            raise
        print(f"ane-verify: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.command == "run":
        args.exporter_given, args.exporter = args.exporter is not None, args.exporter or "trace"
    if not args.debug:
        _quiet_libraries()
    from .staging import Stopped, remove_own, stop_on_signals

    try:
        with stop_on_signals():
            return args.handler(args)
    except (Stopped, KeyboardInterrupt) as stop:
        # a signal between a staging folder's creation and the pipeline's cleanup: this process's own
        remove_own(Path(getattr(args, "out", None) or "."))
        code = stop.exit_code if isinstance(stop, Stopped) else 130
        name = str(stop) if isinstance(stop, Stopped) else "SIGINT"
        print(f"ane-verify: stopped by {name}; no staging folder left behind", file=sys.stderr)
        return code
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
