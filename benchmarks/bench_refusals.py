"""Refusals before work: the wall time of each argument error ``ane-verify`` reports, in a fresh process
(``python -m verification ...``, interpreter start-up included), against the 2 s goal of docs/refusals.md.

Each case must exit 2 with one line on stderr; the script prints the seconds (best of ``--repeats``) and
exits 1 when any case is slower than ``--max-seconds`` or did not refuse. Run on a quiet machine:
    python benchmarks/bench_refusals.py [--repeats 3] [--max-seconds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _files(root: Path) -> dict[str, str]:
    llama = root / "llama-no-tokenizer"
    llama.mkdir()
    config = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "max_position_embeddings": 64}
    (llama / "config.json").write_text(json.dumps(config))
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    (llama / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bytes(4))
    short = root / "short.gguf"  # a GGUF header that promises 272 tensors, cut at 100 bytes
    short.write_bytes((b"GGUF" + struct.pack("<IQQ", 3, 272, 33)).ljust(100, b"\0"))
    report = root / "report.json"
    report.write_text('{"checks": [')
    return {"llama": str(llama), "gguf": str(short), "report": str(report), "out": str(root / "out")}


CASES = [
    ("run smollm2 --context 100000", "run smollm2 --context 100000 --out {out}"),
    ("run distilbert --seq-len 100000", "run distilbert --seq-len 100000 --out {out}"),
    ("run --weights 100-byte.gguf", "run --weights {gguf} --out {out}"),
    (
        "run --weights llama-dir --text hello",
        "run --weights {llama} --text hello --context 64 --prefill-len 8 --new-tokens 4 --out {out}",
    ),
    (
        "sensitivity --seq-len 100000",
        "sensitivity distilbert --config palettize:4 --seq-len 100000 --out {out}",
    ),
    ("gate not-json.json", "gate {report}"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=2.0)
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        files = _files(Path(tmp))
        print(f"{'refusal':<42} {'best s':>7}  exit  line")
        for name, template in CASES:
            argv = [sys.executable, "-m", "verification", *template.format(**files).split()]
            times, done = [], None
            for _ in range(args.repeats):
                start = time.perf_counter()
                done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
                times.append(time.perf_counter() - start)
            assert done is not None
            best = min(times)
            ok = done.returncode == 2 and done.stderr.count("\n") == 1 and best <= args.max_seconds
            failed |= not ok
            print(f"{name:<42} {best:7.2f}  {done.returncode:>4}  {done.stderr.strip()[:90]}")
    verdict = "FAILED" if failed else "met"
    print(f"goal: every refusal exits 2 with one line within {args.max_seconds} s: {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
