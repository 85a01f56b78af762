"""A second `ane-verify run` of the same model against the first, side by side on one machine.

Run: python benchmarks/bench_cache.py [MODEL] [run options]   (default: distilbert)

Runs the command twice into an empty program cache (a temporary $ANE_VERIFY_CACHE): cold (every program
converted) then warm (served by the cache). Prints both wall times, each run's stage table (seconds and
peak RSS), the machine, and the ratio warm / cold; exits 1 when the ratio is above the goal of issue 18
(0.35) or a run fails.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from verification.pytest_plugin import host_section

GOAL = 0.35


def timed_run(argv: list[str], out: Path, env: dict) -> tuple[float, dict]:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "verification", "run", *argv, "--quiet", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    if result.returncode not in (0, 1):
        raise SystemExit(f"bench_cache: the run exited {result.returncode}:\n{result.stderr[-2000:]}")
    return wall, json.loads((out / "report.json").read_text())


def main(argv: list[str]) -> int:
    argv = argv or ["distilbert"]
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        env = {**os.environ, "ANE_VERIFY_CACHE": str(Path(tmp) / "cache")}
        runs = {name: timed_run(argv, Path(tmp) / name, env) for name in ("cold", "warm")}
    host = host_section(None)  # the machine, as the suite's --ane-report records it
    print(f"machine: {host['cpu']}, {host['cores']} cores, {platform.system()} {platform.machine()}")
    print(f"command: ane-verify run {' '.join(argv)}")
    for name, (wall, report) in runs.items():
        cache = report["details"].get("program_cache", {})
        stages = ", ".join(
            f"{s['name']} {s['seconds']:.1f} s / {s.get('peak_mb', 0):.0f} MB"
            for s in report["details"]["stages"]
        )
        print(f"{name}: {wall:.1f} s wall; cache {cache.get('hits')} hit(s), {cache.get('misses')} miss(es)")
        print(f"  stages: {stages}")
    ratio = runs["warm"][0] / runs["cold"][0]
    met = ratio <= GOAL
    print(f"warm / cold = {ratio:.2f} (goal <= {GOAL}): {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
