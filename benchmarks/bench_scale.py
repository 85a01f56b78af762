"""`ane-verify run` of causal LMs at the scale users ship, with the goals of issue 18, in one invocation.

Run: python benchmarks/bench_scale.py [--presets smollm2-135m,qwen3-0.6b] [--layers N] [--json FILE]
     [--keep DIR]

For each preset, writes a seeded checkpoint of the published architecture (scripts/seeded_checkpoint.py;
no real checkpoint can be fetched here), runs `ane-verify run --weights DIR --no-cache` on it with the
defaults, and reads the run's own report: verdict, wall time, the stage table's peak (the process tree's
where conversion ran in children), the model's fp32 weight bytes. Prints one row per model, the machine
(CPU model, cores), and the goals, each met or not:

- memory: every run's peak at most 3x its fp32 weights + 1.5 GB (issue 18, point 1);
- scale: with two or more presets, the largest against the smallest: t ratio and peak ratio each at most
  1.2x their parameter ratio (point 3);
- every run PASSED.

Exits 1 when a goal is missed. `--layers N` cuts every preset to N layers (a quick ladder). These are the
figures of README.md's performance table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from verification.pytest_plugin import host_section  # noqa: E402

MEMORY_FACTOR, MEMORY_BASE_MB = 3.0, 1500.0
SCALE_SLACK = 1.2


def _run(preset: str, layers: int | None, root: Path) -> dict:
    checkpoint = root / preset
    make = [sys.executable, str(ROOT / "scripts" / "seeded_checkpoint.py"), preset, str(checkpoint)]
    made = subprocess.run(
        make + (["--layers", str(layers)] if layers else []), capture_output=True, text=True
    )
    if made.returncode != 0:
        raise SystemExit(f"bench_scale: seeded_checkpoint.py {preset} failed:\n{made.stderr[-2000:]}")
    out = root / f"{preset}-run"
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "verification", "run", "--weights", str(checkpoint), "--no-cache", "--quiet"]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    wall = time.perf_counter() - start
    if result.returncode not in (0, 1):
        raise SystemExit(
            f"bench_scale: the run of {preset} exited {result.returncode}:\n{result.stderr[-2000:]}"
        )
    report = json.loads((out / "report.json").read_text())
    memory = report["details"]["memory"]
    config = json.loads((checkpoint / "config.json").read_text())
    # seeded_checkpoint.py prints "DIR: PRESET, N layers, 187,045,376 parameters, 748 MB fp32"
    parameters = int(made.stdout.split(" parameters")[0].rsplit(" ", 1)[-1].replace(",", ""))
    return {
        "preset": preset,
        "layers": config["num_hidden_layers"],
        "parameters": parameters,
        "verdict": "PASSED" if report["passed"] else "FAILED",
        "wall_s": round(wall, 1),
        "peak_mb": memory["peak_mb"],
        "weights_fp32_mb": memory["weights_fp32_mb"],
        "peak_over_weights": memory["peak_over_weights"],
        "stages": [(s["name"], s["seconds"], s["peak_mb"]) for s in report["details"]["stages"]],
    }


def goals(rows: list[dict]) -> list[tuple[str, bool]]:
    found = []
    for row in rows:
        limit = MEMORY_FACTOR * row["weights_fp32_mb"] + MEMORY_BASE_MB
        found.append((f"{row['preset']}: PASSED", row["verdict"] == "PASSED"))
        found.append(
            (
                f"{row['preset']}: peak {row['peak_mb']:.0f} MB <= 3 x {row['weights_fp32_mb']:.0f} + 1500 = "
                f"{limit:.0f} MB",
                row["peak_mb"] <= limit,
            )
        )
    if len(rows) >= 2:
        small, large = min(rows, key=lambda r: r["parameters"]), max(rows, key=lambda r: r["parameters"])
        params = large["parameters"] / small["parameters"]
        for name, key in (("time", "wall_s"), ("peak", "peak_mb")):
            ratio = large[key] / small[key]
            found.append(
                (
                    f"{name}({large['preset']}) / {name}({small['preset']}) = {ratio:.2f} <= 1.2 x the "
                    f"parameter ratio {params:.2f} = {SCALE_SLACK * params:.2f}",
                    ratio <= SCALE_SLACK * params,
                )
            )
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="smollm2-135m,qwen3-0.6b")
    parser.add_argument("--layers", type=int, help="cut every preset to this many layers")
    parser.add_argument("--json", type=Path, help="also write the rows and goals here")
    parser.add_argument("--keep", type=Path, help="write the checkpoints and runs here (a new directory)")
    args = parser.parse_args(argv)
    host = host_section(None)
    if args.keep is not None:
        args.keep.mkdir(parents=True)  # refused if it exists: nothing of an earlier run is mixed in
        rows = [_run(preset, args.layers, args.keep) for preset in args.presets.split(",")]
    else:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
            rows = [_run(preset, args.layers, Path(tmp)) for preset in args.presets.split(",")]
    print(f"machine: {host['cpu']}, {host['cores']} cores")
    print("| model | layers | parameters | verdict | wall | peak RSS | peak / fp32 weights |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['preset']} (seeded) | {r['layers']} | {r['parameters'] / 1e6:.0f}M | {r['verdict']} | "
            f"{r['wall_s'] / 60:.1f} min | {r['peak_mb'] / 1000:.2f} GB | {r['peak_over_weights']:.1f}x |"
        )
    for r in rows:
        print(f"{r['preset']} stages: " + ", ".join(f"{n} {s:.0f} s / {p:.0f} MB" for n, s, p in r["stages"]))
    checked = goals(rows)
    for text, met in checked:
        print(f"{'met' if met else 'NOT met'}: {text}")
    if args.json:
        args.json.write_text(json.dumps({"machine": host, "rows": rows, "goals": checked}, indent=2))
    return 0 if all(met for _, met in checked) else 1


if __name__ == "__main__":
    raise SystemExit(main())
