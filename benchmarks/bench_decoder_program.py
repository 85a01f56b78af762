"""Time a decode step of SmolLM2-135M's architecture (seeded weights) as a converted fp16 program with the
state cache, run by the MIL executor, against the optimized torch model's decode step, side by side.

The program is converted once (cache capacity ``--context``, default 1088) and timed at two cache fills:
256 (the ratio gate: the executor's step within ``--max-ratio``, 2x, of torch's) and 64 vs 1024 (the
step may grow with the attention, never with the fill through a copy; the program attends over the
whole capacity, so both fills should cost about the same). Beside them, the same step by an executor
that copies the state instead of writing it in place (``in_place_states=False``): what the in-place
write saves. Each timing is the median of ``--repeats`` interleaved rounds; torch uses 2 threads.

Exits 1 when the executor's decode step at fill 256 takes more than ``--max-ratio`` times torch's, or when
the step at fill 1024 takes more than 1.5x the step at fill 64.

Run: python benchmarks/bench_decoder_program.py [--repeats N] [--layers N] [--context N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("TQDM_DISABLE", "1")  # conversion progress bars would bury the figures
MAX_RATIO = 2.0
MAX_FILL_GROWTH = 1.5


def seeded_model(layers: int, context: int):
    import ane_models
    from verification.release import decoder_zoo
    from verification.release.decoder_zoo import SMOLLM2_135M, seeded_smollm2

    decoder_zoo.SMOLLM2_135M = dict(SMOLLM2_135M, num_hidden_layers=layers)
    source = seeded_smollm2()
    return ane_models.optimize(source.hf_model, cache_capacity=context, prefill_length=64)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--layers", type=int, default=30)
    parser.add_argument("--context", type=int, default=1088)
    parser.add_argument("--max-ratio", type=float, default=MAX_RATIO)
    args = parser.parse_args()
    torch.set_num_threads(2)

    from verification.decoders.conversion import convert_decoder
    from verification.mil import MILExecutor, load_program

    lm = seeded_model(args.layers, args.context)
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        converted = convert_decoder(lm, Path(scratch) / "smollm2.mlpackage", cache="state", precision="fp16")
        print(
            f"converted (prefill + decode) in {time.perf_counter() - start:.1f} s, "
            f"{converted.package_bytes / 2**20:.1f} MiB"
        )
        start = time.perf_counter()
        decode = MILExecutor(load_program(converted.path), function_name="decode")
        writes = sum(op.op_type == "slice_update" for op in decode.function.operations)
        print(
            f"executor built in {time.perf_counter() - start:.1f} s; in-place state writes: "
            f"{len(decode.in_place_updates)} of {writes} slice_update ops"
        )
        copying = MILExecutor(decode.program, function_name="decode", in_place_states=False)
        state, copying_state = decode.make_state(), copying.make_state()
        capacity = args.context

        def copying_step(position: int) -> None:
            copying.run(
                {
                    "input_ids": np.array([[7]], np.int32),
                    "position": np.array([position], np.int32),
                    "position_ids": np.array([[position]], np.int32),
                    "attention_mask": np.ones((1, capacity), np.int32),
                },
                state=copying_state,
            )

        def program_step(position: int) -> None:
            decode.run(
                {
                    "input_ids": np.array([[7]], np.int32),
                    "position": np.array([position], np.int32),
                    "position_ids": np.array([[position]], np.int32),
                    "attention_mask": np.ones((1, capacity), np.int32),
                },
                state=state,
            )

        def torch_step(position: int) -> None:
            lm.decode_step(torch.tensor([[7]]), position, None, torch.ones(1, position + 1, dtype=torch.long))

        timings = {"torch@256": [], "mil@256": [], "mil@64": [], "mil@1024": [], "mil-copying@256": []}
        steps = {
            "torch@256": (torch_step, 256),
            "mil@256": (program_step, 256),
            "mil@64": (program_step, 64),
            "mil@1024": (program_step, 1024),
            "mil-copying@256": (copying_step, 256),
        }
        for fn, position in steps.values():  # warm up
            fn(position)
        names = list(steps)
        for round_index in range(args.repeats):
            for name in names[round_index % len(names) :] + names[: round_index % len(names)]:
                fn, position = steps[name]
                start = time.perf_counter()
                fn(position)
                timings[name].append(time.perf_counter() - start)
    median = {name: statistics.median(values) * 1000 for name, values in timings.items()}
    ratio = median["mil@256"] / median["torch@256"]
    growth = median["mil@1024"] / median["mil@64"]
    print(
        f"decode step, cache filled to 256: torch {median['torch@256']:.1f} ms, MIL executor (fp16 program, "
        f"state cache) {median['mil@256']:.1f} ms ({ratio:.2f}x; goal <= {args.max_ratio}x)"
    )
    print(
        f"MIL decode step at fill 64: {median['mil@64']:.1f} ms, at fill 1024: {median['mil@1024']:.1f} ms "
        f"({growth:.2f}x; goal <= {MAX_FILL_GROWTH}x: no copy of the cache per step)"
    )
    print(
        f"the same step copying the cache instead of writing it in place: {median['mil-copying@256']:.1f} ms"
    )
    return 0 if ratio <= args.max_ratio and growth <= MAX_FILL_GROWTH else 1


if __name__ == "__main__":
    sys.exit(main())
