"""Core AI beside coremltools and the MIL reference executor, on the model users get, side by side.

The model: ``ane_models.optimize`` of a seeded ``transformers.DistilBertModel`` with the DistilBERT-base
config (6 layers, 768 wide, 12 heads, FFN 3072, eager attention), as in bench_mil_executor.py; sequence
128, batch 1, the last eighth padded. Needs the coreai extra.

Measured in one run:
- conversion time, fp32 and fp16: ``verification.coreml.convert`` (coremltools, the project's pass
  pipeline) against ``verification.coreai.convert`` (torch.export, Core AI's decompositions, TorchConverter);
- prediction time, median of ``--repeats`` interleaved rounds (each program loaded once): torch eager (fp32),
  the MIL executor (fp32 program; fp16 program in its default fp16-storage mode) and Core AI's bundled
  interpreter (fp32 and fp16 programs); torch on 2 threads. The interpreter's fp16 path is far slower
  than the others, so it gets ``--fp16-repeats`` rounds of its own after the interleaved ones.
- parity of every program against torch fp32, so a fast wrong answer cannot pass.

Exits 1 when a goal is missed: Core AI's fp32 conversion at most ``--max-conversion-ratio`` (2.0) times
coremltools' fp32 conversion, and every program within the parity gates of verification/thresholds.py.

Run: python benchmarks/bench_coreai.py [--repeats N] [--fp16-repeats N] [--layers N] [--seq N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_mil_executor import example_inputs, optimized_distilbert  # noqa: E402

from verification import thresholds  # noqa: E402
from verification.metrics import psnr  # noqa: E402

MAX_CONVERSION_RATIO = 2.0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fp16-repeats", type=int, default=3)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--max-conversion-ratio", type=float, default=MAX_CONVERSION_RATIO)
    args = parser.parse_args()
    if args.repeats < 1 or args.fp16_repeats < 1 or args.layers < 1 or args.seq < 8:
        parser.error(
            "expected --repeats >= 1, --fp16-repeats >= 1, --layers >= 1, --seq >= 8; got "
            f"{args.repeats}, {args.fp16_repeats}, {args.layers}, {args.seq}"
        )
    from verification.coreai import missing_reason

    if missing_reason():
        print(f"bench_coreai: {missing_reason()}", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore")
    from verification.coreai import Session, convert, describe
    from verification.coreml import convert as coreml_convert
    from verification.mil import MILExecutor

    torch.set_num_threads(2)
    model, config = optimized_distilbert(args.layers)
    ids, mask = example_inputs(args.seq, config.vocab_size)
    feed = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
    print(
        f"model: ane_models.optimize(transformers.DistilBertModel), {args.layers} layers, 768 wide, "
        f"seq {args.seq}"
    )

    conversion, mil, coreai = {}, {}, {}
    for precision in ("fp32", "fp16"):
        start = time.perf_counter()
        mlmodel = coreml_convert(model, (ids, mask), precision=precision)
        conversion[("coremltools", precision)] = time.perf_counter() - start
        mil[precision] = MILExecutor(mlmodel)
        start = time.perf_counter()
        coreai[precision] = convert(model, (ids, mask), precision=precision)
        conversion[("Core AI", precision)] = time.perf_counter() - start
    print("conversion (s):")
    for precision in ("fp32", "fp16"):
        ml, ai = conversion[("coremltools", precision)], conversion[("Core AI", precision)]
        print(f"  {precision}: coremltools {ml:6.1f}   Core AI {ai:6.1f}   ({ai / ml:.2f}x coremltools)")

    with Session(coreai["fp32"]) as ai32, Session(coreai["fp16"]) as ai16:
        print(f"runtime: {describe()}")

        def torch_eager():
            with torch.inference_mode():
                return model(ids, mask)[0].numpy()

        calls = {
            "torch eager (fp32)": torch_eager,
            "MIL executor, fp32 program": lambda: next(iter(mil["fp32"].run(feed).values())),
            "MIL executor, fp16 program": lambda: next(iter(mil["fp16"].run(feed).values())),
            "Core AI interpreter, fp32": lambda: next(
                iter(ai32.run(coreai["fp32"].feeds((ids, mask))).values())
            ),
        }
        fp16_label = "Core AI interpreter, fp16"
        fp16_call = lambda: next(iter(ai16.run(coreai["fp16"].feeds((ids, mask))).values()))  # noqa: E731
        reference = torch_eager()
        failures = []
        floors = {"fp32": thresholds.COREAI_FP32_PSNR_DB, "fp16": thresholds.COREAI_FP16_PSNR_DB}
        for label, call in {**calls, fp16_label: fp16_call}.items():
            if label.startswith("torch"):
                continue
            start = time.perf_counter()
            value = psnr(reference, np.asarray(call(), np.float32))
            first = time.perf_counter() - start
            floor = floors["fp16" if "fp16" in label else "fp32"]
            print(
                f"  parity {label:<28} {value:6.1f} dB vs torch fp32 (floor {floor:.0f}; "
                f"first call {first:.2f} s)"
            )
            if not value >= floor:
                failures.append(f"{label}: {value:.1f} dB below {floor:.0f} dB")

        times = {label: [] for label in calls}
        labels = list(calls)
        for round_index in range(args.repeats):
            shift = round_index % len(labels)
            for label in labels[shift:] + labels[:shift]:
                start = time.perf_counter()
                calls[label]()
                times[label].append(time.perf_counter() - start)
        times[fp16_label] = []
        for _ in range(args.fp16_repeats):
            start = time.perf_counter()
            fp16_call()
            times[fp16_label].append(time.perf_counter() - start)
    medians = {label: statistics.median(samples) for label, samples in times.items()}
    eager = medians["torch eager (fp32)"]
    print(f"prediction, median of {args.repeats} interleaved rounds ({args.fp16_repeats} for Core AI fp16):")
    for label, median in medians.items():
        print(f"  {label:<28} {median * 1e3:9.1f} ms   {median / eager:6.2f}x torch eager")
    ratio = conversion[("Core AI", "fp32")] / conversion[("coremltools", "fp32")]
    if ratio > args.max_conversion_ratio:
        failures.append(
            f"Core AI fp32 conversion {ratio:.2f}x coremltools, above {args.max_conversion_ratio}x"
        )
    if failures:
        print("FAIL: " + "; ".join(failures))
        return 1
    print(
        f"ok: Core AI converts in {ratio:.2f}x coremltools' time (goal: at most {args.max_conversion_ratio}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
