"""``ane-verify run``: the seed tutorial end to end (optimize, trace, convert, save the .mlpackage) and its
verification, stage by stage, into a sealed report. Every artifact is written to a staging directory
inside the output directory and moved into place only when the run completes."""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from . import model_zoo
from . import staging as staging_folder
from .context import Context, RunOptions  # noqa: F401 (RunOptions: the run's public options type)
from .coreai_stages import stages_for
from .preflight import Plan
from .preflight import plan as make_plan
from .resources import StageMeter, fp32_weight_bytes
from .stages import STAGE_FUNCTIONS, STAGES

# What reports.write.write_reports puts in the output directory.
REPORT_FILES = {
    "report_json": "report.json",
    "report_md": "report.md",
    "report_html": "report.html",
    "junit_xml": "junit.xml",
}


def prepare_output(out: Path) -> bool:
    """Check (and create) the output directory; True if this run created it."""
    if out.exists() and not out.is_dir():
        raise model_zoo.ModelInputError(f"--out: {str(out)!r} exists and is not a directory")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise model_zoo.ModelInputError(f"--out: cannot create {str(out)!r} ({error.strerror})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise model_zoo.ModelInputError(f"--out: {str(out)!r} is not writable")
    return created


def run(
    options: RunOptions,
    progress: Callable[[int, str, float | None], None] = lambda *a: None,
    *,
    plan: Plan | None = None,
    step: Callable[[str, int, int], None] = lambda label, done, total: None,
) -> dict:
    """Run every stage; returns the sealed report. Artifacts land in ``options.out`` only on success.

    ``plan``: ``preflight.plan(options)`` when the caller already made it (every argument is checked
    there, before anything is built); ``step(label, done, total)`` reports progress inside a stage."""
    plan = plan or make_plan(options)
    titles, functions = stages_for(options.target)  # checks the target (and the coreai extra) first
    if options.target == "coreml":
        titles, functions = STAGES, STAGE_FUNCTIONS  # this module's names: a test may replace a stage
    out = Path(options.out)
    from ..coreml import program_cache  # imports coremltools: before the staging folder exists

    cache_events = len(program_cache.EVENTS)
    meter = StageMeter()
    with staged_output(out) as staging:
        ctx = Context(options=options, staging=staging, plan=plan, progress=step)
        for index, (title, stage) in enumerate(zip(titles, functions, strict=False)):
            progress(index, title, None)
            with meter.stage(title):
                stage(ctx)
            progress(index, title, meter.stages[-1]["seconds"])
        progress(len(titles) - 1, titles[-1], None)
        gate_start = time.perf_counter()
        ctx.details["stages"] = meter.stages
        ctx.details["memory"] = meter.memory_section(fp32_weight_bytes(ctx.pair.baseline))
        ctx.details["program_cache"] = program_cache.summary(cache_events)
        report = publish_report(
            staging,
            out,
            model=ctx.pair.name,
            config={
                "seq_len": options.seq_len,
                "batch_size": options.batch_size,
                "precision": options.precision,
                "exporter": options.exporter if options.target == "coreml" else "export",
                "backend": ctx.backend,
                **_target_config(options.target, ctx.backend),
            },
            source=ctx.details.pop("source"),
            checks=ctx.checks,
            artifacts={key: str(out / name) for key, name in {**ctx.artifacts, **REPORT_FILES}.items()},
            details=ctx.details,
        )
        progress(len(titles) - 1, titles[-1], round(time.perf_counter() - gate_start, 2))
        return report


@contextmanager
def staged_output(out: Path) -> Iterator[Path]:
    """A staging folder inside ``out`` (created, checked) for everything a command writes. On any failure
    the staging folder goes, and ``out`` too when this command created it: nothing half-written is left.
    The staging folder is removed in every case; ``publish_report`` moves its contents out first."""
    created = prepare_output(out)
    staging = staging_folder.create(out)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish_report(
    staging: Path,
    out: Path,
    *,
    model: str,
    config: dict,
    source: dict,
    checks: list,
    artifacts: dict,
    details: dict,
) -> dict:
    """Seal the report (schema 1, stamped with the tool's version and this environment), write its four
    files into ``staging``, then move everything staged into ``out``; returns the report."""
    from .reports.schema import environment_section, seal, stamped
    from .reports.write import write_reports

    report = seal(
        stamped(
            {
                "schema_version": 1,
                "model": model,
                "config": config,
                "environment": environment_section(),
                "source": source,
                "checks": checks,
                "artifacts": artifacts,
                "details": finite_or_named(details),
            }
        )
    )
    write_reports(report, staging)
    _publish(staging, out)
    return report


def finite_or_named(value):
    """``value`` with every NaN or infinite float in it (a measured figure of a broken program: an output
    that is NaN, a PSNR of -inf) written as its name, "nan" / "inf" / "-inf": JSON has no such number."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: finite_or_named(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_named(item) for item in value]
    return value


def _target_config(target: str, backend: str) -> dict:
    """Which target converted the programs and which runtime computed their figures."""
    if target == "coreai":
        from ..coreai import describe

        return {"target": "coreai", "runtime": describe()}
    runtime = "Core ML" if backend == "coreml" else "MIL reference executor (verification.mil)"
    return {"target": "coreml", "runtime": runtime}


def _publish(staging: Path, out: Path) -> None:
    """Move every staged artifact into ``out``, replacing older ones of the same name."""
    for item in staging.iterdir():
        target = out / item.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(item, target)
