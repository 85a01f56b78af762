"""Compression goals, measured side by side in one run.

1. The MIL executor on a 4-bit palettized DistilBERT-base program within ``--max-ratio`` (1.2x) of the
   same executor on the uncompressed fp16 program: the constexpr ops are decoded once, at load time, so a
   call runs the same plan. Both programs come from one conversion (``ane_models.optimize`` of a seeded
   DistilBERT-base sequence classifier, sequence 128, batch 1, iOS18, fp16); the calls are interleaved,
   ``--repeats`` rounds, median.
2. ``ane-verify sensitivity``'s work on DistilBERT-base at one config (``--config``, palettize:4 k-means by
   default; every weight of every linear layer, and the embeddings, one at a time; 2 inputs) in under
   ``--max-sensitivity-seconds`` (300 s) wall.

Exits 1 when a goal is missed. Run: python benchmarks/bench_compression.py [--repeats N] [--skip-sensitivity]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import coremltools as ct
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from verification.compression.apply import compress  # noqa: E402
from verification.compression.recipe import parse_compress, parse_config  # noqa: E402
from verification.compression.sensitivity import layer_sensitivity  # noqa: E402
from verification.coreml import convert  # noqa: E402
from verification.mil import MILExecutor  # noqa: E402
from verification.release import model_zoo  # noqa: E402
from verification.release.compression_stage import sensitivity_inputs  # noqa: E402

MAX_RATIO = 1.2
MAX_SENSITIVITY_SECONDS = 300.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--config", default="palettize:4")
    parser.add_argument("--max-ratio", type=float, default=MAX_RATIO)
    parser.add_argument("--max-sensitivity-seconds", type=float, default=MAX_SENSITIVITY_SECONDS)
    parser.add_argument("--skip-sensitivity", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    warnings.simplefilter("ignore")
    pair = model_zoo.embedded("distilbert")
    examples, feeds, references, reals = sensitivity_inputs(pair, 128, 1, 2)
    start = time.perf_counter()
    mlmodel = convert(
        pair.optimized, examples[0], precision="fp16", minimum_deployment_target=ct.target.iOS18
    )
    print(f"converted DistilBERT-base in {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    compressed = compress(mlmodel, parse_compress(args.config))
    print(f"compressed at {args.config} in {time.perf_counter() - start:.1f} s")
    loads = {}
    executors = {}
    for label, model in (("uncompressed fp16", mlmodel), (f"{args.config}", compressed)):
        start = time.perf_counter()
        executors[label] = MILExecutor(model)
        loads[label] = time.perf_counter() - start
    times: dict[str, list] = {label: [] for label in executors}
    labels = list(executors)
    for round_ in range(args.repeats):
        for label in labels[round_ % 2 :] + labels[: round_ % 2]:  # alternate which runs first
            start = time.perf_counter()
            executors[label].run(feeds[0])
            times[label].append(time.perf_counter() - start)
    medians = {label: statistics.median(t) for label, t in times.items()}
    for label in labels:
        print(
            f"{label:>20}: load {loads[label]:5.2f} s, run median {medians[label] * 1e3:7.1f} ms "
            f"over {args.repeats} (ops per call {executors[label].op_count})"
        )
    ratio = medians[labels[1]] / medians[labels[0]]
    failed = ratio > args.max_ratio
    print(
        f"compressed / uncompressed: {ratio:.3f}x (goal <= {args.max_ratio}x): "
        f"{'MISSED' if failed else 'met'}"
    )
    if not args.skip_sensitivity:
        start = time.perf_counter()
        result = layer_sensitivity(mlmodel, parse_config(args.config), feeds, references, real_masks=reals)
        seconds = time.perf_counter() - start
        missed = seconds > args.max_sensitivity_seconds
        print(
            f"sensitivity at {args.config}: {len(result.layers)} weights one at a time in {seconds:.1f} s "
            f"(goal < {args.max_sensitivity_seconds:.0f} s): {'MISSED' if missed else 'met'}; most costly "
            f"{result.layers[0].layer} {result.layers[0].cost_db:.2f} dB"
        )
        failed |= missed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
