"""``ane-verify check PACKAGE --reference REF``: judge a package whoever converted it, against the model it
was converted from, and write the same four reports as ``run`` (report.json/.md/.html, junit.xml).

Everything that can be decided without running (the package's interface, the reference, the mapping
between them, the sizes) is decided first: a ``MappingError`` then exits 2 with nothing written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..context import adopted_check, judged_check
from ..pipeline import REPORT_FILES, _target_config, publish_report, staged_output
from ..resources import StageMeter, fp32_weight_bytes
from .mapping import MappingError

STAGES = (
    "read the package and the reference",
    "run both on the same inputs",
    "fp16 hazards",
    "readiness",
    "compression found in the package",
    "speed-up and placement",
    "gate",
)


@dataclass
class CheckOptions:
    package: str
    reference: str
    map: str | None = None
    seq_len: int | None = None
    batch_size: int | None = None
    texts: tuple = ()
    backend: str = "auto"
    out: Path = Path("ane-verify-out")
    strict: bool = False
    overrides: dict = field(default_factory=dict)
    compress: str | None = None  # what the package is declared to hold (check compares it with the found)
    prefill_len: int | None = None  # decoders: prompt tokens (default: the package's prefill length, <= 64)
    new_tokens: int = 16  # decoders: greedy tokens compared
    precision: str = "fp16"  # read from the package (does it compute in fp16?)


@dataclass
class _Judging:
    """What ``judged_check`` reads of a run's context."""

    options: CheckOptions
    architecture: str | None = None
    built: object = None


def _precision_of(package: str) -> str:
    """fp16 when any function computes a value in fp16 (the hazards and parity bars follow it)."""
    from coremltools.converters.mil.mil import types

    from ...mil.program import load_program

    program = load_program(package)
    for function in program.functions.values():
        for op in function.operations:
            for out in op.outputs:
                dtype = out.dtype if types.is_tensor(out.sym_type) else out.sym_type
                if dtype == types.fp16:
                    return "fp16"
    return "fp32"


def run(options: CheckOptions, progress: Callable[[int, str, float | None], None] = lambda *a: None) -> dict:
    from ...coreml import resolve_backend
    from . import encoder_check
    from .interface import load_interface
    from .map_file import read_map
    from .reference import inspect_reference, load_reference

    map_file = read_map(options.map)
    found = inspect_reference(options.reference)
    meter = StageMeter()
    core_ai = Path(options.package).suffix == ".aimodel"
    progress(0, STAGES[0], None)
    with meter.stage(STAGES[0]):
        if core_ai:
            from . import aimodel

            interface = aimodel.load_interface(options.package)
        else:
            interface = load_interface(options.package)
        reference = load_reference(found)
        if core_ai and reference.kind != "encoder":
            raise MappingError(
                f"{options.package}: a Core AI asset is checked against an encoder; the reference "
                f"{reference.label} is a causal LM (run --target coreai converts encoders only, too)"
            )
        if reference.kind != "encoder":
            from .decoder_check import plan as decoder_plan

            planned = decoder_plan(interface, reference, map_file, options)
        else:
            planned = encoder_check.plan(
                interface, reference, map_file, options.seq_len, options.batch_size, options.texts
            )
        options.precision = (aimodel.precision_of if core_ai else _precision_of)(options.package)
    progress(0, STAGES[0], meter.stages[-1]["seconds"])
    backend = "coreai" if core_ai else resolve_backend(options.backend)
    out = Path(options.out)
    checks: list = []
    details: dict = {"mapping": planned.mapping.to_dict()}
    judging = _Judging(options, getattr(reference.pair, "architecture", None))

    def judge(name, metric, value, reason=None):
        checks.append(judged_check(name, metric, value, judging, reason=reason))

    def stage(index, body):
        progress(index, STAGES[index], None)
        with meter.stage(STAGES[index]):
            result = body()
        progress(index, STAGES[index], meter.stages[-1]["seconds"])
        return result

    with staged_output(out) as staging:
        if core_ai:  # parity, then Core AI's rules; compression and speed are read from Core ML packages
            config, source = aimodel.run_stages(
                stage,
                planned,
                reference,
                options,
                judge,
                lambda found: checks.extend(adopted_check(c, judging) for c in found),
                details,
            )
        elif reference.kind == "encoder":
            config, source = _encoder_stages(
                stage, planned, interface, reference, options, backend, judge, details
            )
            stage(3, lambda: _readiness(options, judging, checks, details))
            stage(4, lambda: _compression_found(options, judge, details))
            stage(5, lambda: _speed_and_placement(options, planned, judging, checks, details))
        else:
            from ...decoders.readiness import function_readiness
            from .decoder_check import device_stage, run_stages

            config, source, prompt = run_stages(stage, planned, reference, options, backend, judge, details)
            per_function = "readiness_per_function"
            stage(3, lambda: details.__setitem__(per_function, function_readiness(options.package)))
            stage(4, lambda: _compression_found(options, judge, details))
            stage(5, lambda: device_stage(planned, reference, options, backend, prompt, judge, details))
        progress(len(STAGES) - 1, STAGES[-1], None)
        details["stages"] = meter.stages
        details["memory"] = meter.memory_section(fp32_weight_bytes(reference.model))
        return publish_report(
            staging,
            out,
            model=reference.label,
            config={
                **config,
                "precision": options.precision,
                "exporter": "foreign",
                "backend": backend,
                "package": str(Path(options.package).resolve()),
                **_target_config("coreai" if core_ai else "coreml", backend),
            },
            source=source,
            checks=checks,
            artifacts={key: str(out / name) for key, name in REPORT_FILES.items()},
            details=details,
        )


def _encoder_stages(stage, planned, interface, reference, options, backend, judge, details):
    from ...coreml import StatefulSession
    from ..model_zoo import inputs_source
    from ..stages import fp16_hazard_checks
    from .encoder_check import HAZARD_CHECKS, feeds, output_parity

    function, by_role = planned.function, planned.by_role
    feed = feeds(function, planned.inputs, by_role)

    def run_both():
        got = StatefulSession(options.package, backend=backend).predict(feed, function_name=function.name)
        rows = output_parity(planned.outputs, got, reference, by_role)
        worst = min(rows, key=lambda r: r["psnr_db"])
        judge(
            "coreml_parity_psnr_db",
            f"worst PSNR (dB) over the package's {len(rows)} matched output(s) vs the reference in torch "
            "fp32 "
            f"({worst['output']}: {worst['compared']}; {backend} backend)",
            worst["psnr_db"],
        )
        details["output_parity"] = rows

    stage(1, run_both)
    if options.precision == "fp16":
        stage(2, lambda: fp16_hazard_checks(options.package, feed, judge, details, function.name))
    else:
        reason = "the package computes in fp32: no fp16 hazards to look for"
        stage(2, lambda: [judge(n, "fp16 hazards", None, reason) for n in HAZARD_CHECKS])
    batch, seq = by_role["input_ids"].shape
    pair = reference.pair
    source = {**reference.source, "inputs": inputs_source(pair, batch, list(options.texts) or None)}
    details["mapping"]["inputs_used"] = {k: list(v.shape) for k, v in feed.items()}
    return {"seq_len": int(seq), "batch_size": int(batch), "function": function.name}, source


def _readiness(options, judging, checks, details) -> None:
    from ...readiness import analyze, findings_by_check, readiness_checks
    from ..context import architecture_of

    analyzed = analyze(options.package, label="package")
    found = readiness_checks(analyzed, architecture=architecture_of(judging))
    checks.extend(adopted_check(c, judging) for c in found)
    details["readiness_findings"] = {
        name: [asdict(f) for f in items] for name, items in findings_by_check(analyzed).items()
    }
    details["op_counts"] = {"optimized": dict(analyzed.op_counts)}
    details["readiness"] = {"optimized": analyzed.to_dict(), "baseline": None, "reason": BASELINE_ABSENT}


BASELINE_ABSENT = (
    "check judges one package: there is no baseline program to compare op counts or time against"
)


def _compression_found(options, judge, details) -> None:
    from .compression_found import judge_compression

    judge_compression(options.package, options.compress, judge, details)


def _speed_and_placement(options, planned, judging, checks, details) -> None:
    import warnings

    from ...ondevice.placement import measure_placement
    from ...ondevice.speedup import speedup_checks
    from .encoder_check import feeds

    batch, seq = planned.by_role["input_ids"].shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "not measured" is recorded in the checks, with the reason
        placement = measure_placement(options.package, strict=options.strict)
        speed = speedup_checks(
            options.package,
            None,
            feeds(planned.function, planned.inputs, planned.by_role),
            seq_len=int(seq),
            batch_size=int(batch),
            strict=options.strict,
            baseline_unavailable=BASELINE_ABSENT,
        )
    checks.extend(adopted_check(c, judging) for c in [*speed.checks, *placement.checks])
    unmeasured = [c for c in speed.checks if not c.measured]
    details["speedup"] = {
        "measured": bool(speed.to_dict()["timings"]),
        "reason": unmeasured[0].reason if unmeasured else None,
        "timings": [{"label": k, **t} for k, t in speed.to_dict()["timings"].items()],
    }
