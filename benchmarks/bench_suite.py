"""Wall time of the whole suite as CI runs it: `pytest -n auto` with the `ci` Hypothesis profile.

Run: python benchmarks/bench_suite.py [extra pytest args]. Prints the wall time and pytest's summary line;
the goal is under 5 minutes on a 2-core machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    env = {**os.environ, "HYPOTHESIS_PROFILE": "ci"}
    command = [sys.executable, "-m", "pytest", "-n", "auto", "-q", "-p", "no:cacheprovider", *sys.argv[1:]]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    summary = [line for line in result.stdout.splitlines() if " passed" in line or " failed" in line]
    print(f"suite wall time: {wall:.1f} s on {os.cpu_count()} cores (goal: < 300 s)")
    print(summary[-1] if summary else result.stdout[-2000:])
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
