"""Wall and CPU time of the suite as CI runs it (`pytest -n auto`, the `ci` Hypothesis profile), alone or
side by side with another revision's suite on the same machine.

Run: python benchmarks/bench_suite.py [--against REV] [--goal RATIO] [-- extra pytest args]

With ``--against REV`` the suite of REV (checked out into a temporary git worktree, run with this
interpreter, so with the same installed packages) runs first, then the working tree's; both wall and CPU
times (the pytest process and its xdist workers, from ``getrusage``), the 20 slowest tests of each and the
ratio working tree / REV are printed, with the machine. Exits 1 when a run fails, or when ``--goal`` is
given and the CPU ratio is above it (issue 18: 0.4 against b35efd3).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from verification.pytest_plugin import host_section

ROOT = Path(__file__).resolve().parents[1]
SLOWEST = 20


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_suite(tree: Path, extra: list[str]) -> dict:
    env = {**os.environ, "HYPOTHESIS_PROFILE": "ci", "PYTHONPATH": str(tree)}
    command = [sys.executable, "-m", "pytest", "-n", "auto", "-q", "-p", "no:cacheprovider"]
    command += [f"--durations={SLOWEST}", *extra]
    cpu, start = children_cpu(), time.perf_counter()
    result = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - start, children_cpu() - cpu
    lines = result.stdout.splitlines()
    summary = [line for line in lines if re.search(r"\d+ (passed|failed)", line)]
    slowest = [line.strip() for line in lines if re.match(r"\s*\d+\.\d+s (call|setup|teardown)\s", line)]
    return {
        "wall": wall,
        "cpu": cpu,
        "code": result.returncode,
        "summary": summary[-1] if summary else result.stdout[-1500:] + result.stderr[-1500:],
        "slowest": slowest[:SLOWEST],
    }


def _print(name: str, figures: dict) -> None:
    print(f"{name}: wall {figures['wall']:.1f} s, CPU {figures['cpu']:.1f} s; {figures['summary']}")
    for line in figures["slowest"]:
        print(f"    {line}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REV", help="a git revision whose suite runs first, beside")
    parser.add_argument("--goal", type=float, help="fail when CPU(working tree) / CPU(REV) is above this")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    if args.goal is not None and args.against is None:
        parser.error("--goal: needs --against REV (the goal is a ratio between two suites)")
    host = host_section(None)  # the machine, as the suite's --ane-report records it
    print(f"machine: {host['cpu']}, {host['cores']} cores, {platform.system()} {platform.machine()}")
    runs: dict[str, dict] = {}
    if args.against:
        with tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp:
            tree = Path(tmp) / "tree"
            added = subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), args.against],
                capture_output=True,
                text=True,
            )
            if added.returncode:
                print(f"bench_suite: --against {args.against}: {added.stderr.strip()}", file=sys.stderr)
                return 2
            try:
                runs[args.against] = run_suite(tree, args.pytest_args)
            finally:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)])
    runs["working tree"] = run_suite(ROOT, args.pytest_args)
    for name, figures in runs.items():
        _print(name, figures)
    failed = any(f["code"] for f in runs.values())
    if args.against:
        base, new = runs[args.against], runs["working tree"]
        cpu_ratio = new["cpu"] / base["cpu"] if base["cpu"] else float("inf")
        print(f"working tree / {args.against}: wall {new['wall'] / base['wall']:.2f}, CPU {cpu_ratio:.2f}")
        if args.goal is not None:
            met = cpu_ratio <= args.goal
            print(f"goal: CPU ratio <= {args.goal}: {'met' if met else 'NOT met'}")
            failed = failed or not met
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
