"""Write a seeded causal-LM checkpoint (config.json + safetensors) of a published architecture, for
``ane-verify run --weights DIR`` at the scale users ship, where no real checkpoint can be fetched.

Presets follow the published configs; ``--layers`` (and the other size options) shrink one for a scale
ladder with everything else kept. Every weight is drawn away from its init: norm scales around 1 with a
spread (trained models' are), projections at the init's scale, seeded.

Run: python scripts/seeded_checkpoint.py qwen3-0.6b OUT_DIR [--layers N] [--hidden N] [--vocab N] [--seed S]
Prints the parameter count and the fp32 weight bytes written.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from verification.release.decoder_args import QWEN3_0_6B, SMOLLM2_135M  # noqa: E402

# preset -> (transformers family, the published config: verification/release/decoder_args.py)
PRESETS = {"qwen3-0.6b": ("qwen3", QWEN3_0_6B), "smollm2-135m": ("llama", SMOLLM2_135M)}


def config_of(preset: str, *, layers=None, hidden=None, intermediate=None, vocab=None):
    """The transformers config of ``preset`` with the sizes given overridden."""
    import transformers

    family, published = PRESETS[preset]
    fields = dict(published)
    for key, value in (
        ("num_hidden_layers", layers),
        ("hidden_size", hidden),
        ("intermediate_size", intermediate),
        ("vocab_size", vocab),
    ):
        if value is not None:
            fields[key] = value
    cls = transformers.Qwen3Config if family == "qwen3" else transformers.LlamaConfig
    theta = fields.pop("rope_theta")
    if "rope_parameters" in inspect.signature(cls.__init__).parameters:  # transformers 5
        fields["rope_parameters"] = {"rope_type": "default", "rope_theta": theta}
    else:
        fields["rope_theta"] = theta
    return cls(**fields)


def write(config, out: Path, seed: int) -> tuple[int, int]:
    """Build the model of ``config`` with seeded weights, save it to ``out``; (parameters, fp32 bytes)."""
    import torch
    import transformers

    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:  # norm scales away from 1, each layer its own
                p.copy_(1 + 0.3 * torch.randn_like(p))
    count = sum(p.numel() for p in model.parameters())
    model.save_pretrained(out, safe_serialization=True)
    return count, 4 * count


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", choices=sorted(PRESETS))
    parser.add_argument("out", type=Path, help="directory to write (must not exist)")
    parser.add_argument("--layers", type=int)
    parser.add_argument("--hidden", type=int)
    parser.add_argument("--intermediate", type=int)
    parser.add_argument("--vocab", type=int)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.out.exists():
        print(f"seeded_checkpoint: {args.out} exists; expected a new directory", file=sys.stderr)
        return 2
    for name in ("layers", "hidden", "intermediate", "vocab"):
        value = getattr(args, name)
        if value is not None and value < 1:
            print(f"seeded_checkpoint: --{name} must be a positive integer, got {value}", file=sys.stderr)
            return 2
    config = config_of(
        args.preset, layers=args.layers, hidden=args.hidden, intermediate=args.intermediate, vocab=args.vocab
    )
    count, fp32_bytes = write(config, args.out, args.seed)
    print(
        f"{args.out}: {args.preset}, {config.num_hidden_layers} layers, {count:,} parameters, "
        f"{fp32_bytes / 1e6:.0f} MB fp32"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
