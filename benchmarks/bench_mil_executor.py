"""Time the MIL reference executor against torch eager on the model users get.

The model: ``ane_models.optimize`` of ``transformers.DistilBertModel`` with the DistilBERT-base config
(6 layers, 768 wide, 12 heads, FFN 3072; eager attention; seeded default initialisation), so the
fp16-safe layer-norm eps and everything else ``optimize`` decides are what is timed. It is converted by
``verification.coreml.convert`` (the project's pass pipeline, layer norms fused) to an fp16 and an fp32 ML
Program; sequence 128, batch 1, the last eighth of the sequence padded.

Timed side by side, interleaved (each round runs all four, in a rotating order), ``--repeats`` rounds,
median: torch eager (the optimized model in fp32), the executor's fp16-storage mode (the default for
fp16 programs), its native-fp16 mode, and the fp32 program. torch uses 2 threads. The executors are built
once (their load time is printed). Beside them, what a user's one-shot call pays: ``predict(path,
backend="mil")`` on the fp16 program saved as an .mlpackage, which loads the package from disk, builds an
executor and runs it, every call (timed in the same interleaved rounds; not gated).

Exits 1 when the default mode (fp16 storage) takes more than ``--max-ratio`` (2.0) times torch eager.

Run: python benchmarks/bench_mil_executor.py [--repeats N] [--layers N] [--seq N] [--max-ratio R]
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

from verification.metrics import psnr  # noqa: E402

DEFAULT_REPEATS = 9  # docs/coreml.md: "median of 9 interleaved runs"
MAX_RATIO = 2.0  # the executor's goal: the default fp16 mode at most 2x torch eager


def optimized_distilbert(layers: int):
    """``ane_models.optimize`` of a seeded DistilBERT-base-sized ``transformers.DistilBertModel``."""
    import transformers

    import ane_models

    config = transformers.DistilBertConfig(n_layers=layers)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    baseline = transformers.DistilBertModel(config).eval()
    return ane_models.optimize(baseline), config


def example_inputs(seq: int, vocab_size: int):
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(3, vocab_size, (1, seq), generator=generator, dtype=torch.int32)
    mask = torch.ones(1, seq, dtype=torch.int32)
    mask[0, seq - seq // 8 :] = 0
    return ids, mask


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--max-ratio", type=float, default=MAX_RATIO)
    args = parser.parse_args()
    if args.repeats < 1 or args.layers < 1 or args.seq < 8:
        parser.error(
            f"expected --repeats >= 1, --layers >= 1, --seq >= 8; "
            f"got {args.repeats}, {args.layers}, {args.seq}"
        )
    warnings.filterwarnings("ignore")
    import tempfile

    from verification.coreml import convert, predict, save
    from verification.mil import MILExecutor

    torch.set_num_threads(2)
    model, config = optimized_distilbert(args.layers)
    ids, mask = example_inputs(args.seq, config.vocab_size)
    feed = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}

    start = time.perf_counter()
    programs = {precision: convert(model, (ids, mask), precision=precision) for precision in ("fp16", "fp32")}
    convert_seconds = time.perf_counter() - start
    start = time.perf_counter()
    runners = {
        "MIL fp16 storage (default)": MILExecutor(programs["fp16"]),
        "MIL native fp16": MILExecutor(programs["fp16"], mode="fp16_native"),
        "MIL fp32 program": MILExecutor(programs["fp32"]),
    }
    load_seconds = time.perf_counter() - start
    default = "MIL fp16 storage (default)"
    assert runners[default].mode == "fp16_storage", runners[default].mode
    print(
        f"model: ane_models.optimize(transformers.DistilBertModel), {args.layers} layers, 768 wide, 12 heads,"
    )
    print(
        f"  FFN 3072, eps {model.ane_config.layer_norm_eps:.3g}, seq {args.seq}, batch 1; "
        f"the fp16 program runs {runners[default].op_count} ops"
    )
    print(
        f"converted both programs (verification.coreml.convert) in {convert_seconds:.1f} s, "
        f"built three executors in {load_seconds:.1f} s"
    )

    def torch_eager():
        with torch.inference_mode():
            return model(ids, mask)[0].numpy()

    calls = {"torch eager": torch_eager}
    for label, runner in runners.items():
        calls[label] = lambda runner=runner: next(iter(runner.run(feed).values()))
    package_dir = tempfile.TemporaryDirectory(prefix="bench-mil-")
    package = save(programs["fp16"], Path(package_dir.name) / "distilbert_fp16.mlpackage")
    one_shot = "predict(path) load + run"
    calls[one_shot] = lambda: next(iter(predict(package, feed, backend="mil").values()))

    reference = torch_eager()
    for label, call in calls.items():
        if label != "torch eager":
            print(f"  parity {label:<28} {psnr(reference, call().astype(np.float32)):6.1f} dB vs torch fp32")

    times: dict[str, list[float]] = {label: [] for label in calls}
    labels = list(calls)
    for round_index in range(args.repeats):
        shift = round_index % len(labels)
        for label in labels[shift:] + labels[:shift]:
            start = time.perf_counter()
            calls[label]()
            times[label].append(time.perf_counter() - start)
    medians = {label: statistics.median(samples) for label, samples in times.items()}
    eager = medians["torch eager"]
    print(f"median of {args.repeats} interleaved runs, torch threads = {torch.get_num_threads()}:")
    for label, median in medians.items():
        print(f"  {label:<28} {median * 1e3:8.1f} ms   {median / eager:5.2f}x torch eager")
    print(
        f"one-shot predict(path, backend='mil') (loads the .mlpackage every call): "
        f"{medians[one_shot] * 1e3:.1f} ms, of which loading and building "
        f"{(medians[one_shot] - medians[default]) * 1e3:.1f} ms beside the steady-state "
        f"{medians[default] * 1e3:.1f} ms"
    )
    package_dir.cleanup()
    ratio = medians[default] / eager
    if ratio > args.max_ratio:
        print(f"FAIL: the default mode takes {ratio:.2f}x torch eager, above the {args.max_ratio}x goal")
        return 1
    print(f"ok: the default mode takes {ratio:.2f}x torch eager (goal: at most {args.max_ratio}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
