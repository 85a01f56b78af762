"""Time the MIL reference executor against torch eager on a DistilBERT-base-sized ANE model.

The model: ``ane_models.distilbert.DistilBertModelANE`` with the DistilBERT-base config when the project
has it (else the self-contained ``AneEncoder`` below, same shape): 6 encoder layers, 768 wide, 12 heads,
FFN 3072, 1x1 convs in (B, C, 1, S) layout, split-einsum attention (one einsum pair per head), BC1S layer
norms; sequence 128, batch 1. It is converted to an fp16
and an fp32 ML Program, then torch eager, the executor's fp16-storage (default) and native-fp16 modes and
the fp32 program are timed side by side, interleaved, several repetitions, median; torch uses 2 threads.

Run: python benchmarks/bench_mil_executor.py [--repeats N] [--layers N] [--self-contained]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from verification.mil import MILExecutor  # noqa: E402
from verification.mil.hazards import psnr  # noqa: E402


class LayerNormBC1S(nn.Module):
    """Layer norm over the channel axis of a (B, C, 1, S) tensor."""

    def __init__(self, channels: int, eps: float = 1e-7):
        super().__init__()
        self.weight = nn.Parameter(1.0 + 0.1 * torch.randn(channels))
        self.bias = nn.Parameter(0.1 * torch.randn(channels))
        self.eps = eps

    def forward(self, x):
        centered = x - x.mean(dim=1, keepdim=True)
        scale = torch.rsqrt((centered * centered).mean(dim=1, keepdim=True) + self.eps)
        return centered * scale * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class EncoderLayer(nn.Module):
    """Split-einsum self-attention and a conv FFN, post-norm like DistilBERT."""

    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.out = (nn.Conv2d(dim, dim, 1) for _ in range(4))
        self.attention_norm = LayerNormBC1S(dim)
        self.ffn_in = nn.Conv2d(dim, hidden, 1)
        self.ffn_out = nn.Conv2d(hidden, dim, 1)
        self.output_norm = LayerNormBC1S(dim)

    def forward(self, x, mask):
        head_dim = x.shape[1] // self.heads
        queries = self.q(x).split(head_dim, dim=1)
        keys = self.k(x).transpose(1, 3).split(head_dim, dim=3)
        values = self.v(x).split(head_dim, dim=1)
        heads = []
        for q, k, v in zip(queries, keys, values, strict=True):
            weights = torch.einsum("bchq,bkhc->bkhq", q, k) * head_dim**-0.5 + mask
            heads.append(torch.einsum("bkhq,bchk->bchq", weights.softmax(dim=1), v))
        x = self.attention_norm(x + self.out(torch.cat(heads, dim=1)))
        return self.output_norm(x + self.ffn_out(nn.functional.gelu(self.ffn_in(x))))


class AneEncoder(nn.Module):
    """Embeddings plus a stack of encoder layers; input ids and a 0/1 attention mask of shape (B, S)."""

    def __init__(self, seq=128, vocab=30522, positions=512, dim=768, heads=12, hidden=3072, layers=6):
        super().__init__()
        self.words = nn.Embedding(vocab, dim)
        self.positions = nn.Embedding(positions, dim)
        self.register_buffer("position_ids", torch.arange(seq)[None], persistent=False)
        self.embedding_norm = LayerNormBC1S(dim)
        self.layers = nn.ModuleList(EncoderLayer(dim, heads, hidden) for _ in range(layers))

    def forward(self, input_ids, attention_mask):
        x = self.words(input_ids) + self.positions(self.position_ids)
        x = self.embedding_norm(x.transpose(1, 2).unsqueeze(2))
        mask = ((1.0 - attention_mask.float()) * -1e4)[:, :, None, None]
        for layer in self.layers:
            x = layer(x, mask)
        return x


def project_distilbert(layers: int):
    """The project's ANE DistilBERT with random weights and the DistilBERT-base config, or None."""
    try:
        import transformers

        from ane_models.distilbert import DistilBertModelANE
    except ImportError:
        return None
    config = transformers.DistilBertConfig(n_layers=layers)
    ane = DistilBertModelANE(config, layer_norm_eps=1e-7).eval()

    class FirstOutput(nn.Module):
        def __init__(self):
            super().__init__()
            self.ane = ane

        def forward(self, input_ids, attention_mask):
            return self.ane(input_ids, attention_mask)[0]

    return FirstOutput().eval()


def convert(model, example, precision):
    import coremltools as ct

    traced = torch.jit.trace(model, example)
    inputs = [
        ct.TensorType(name="input_ids", shape=tuple(example[0].shape), dtype=np.int32),
        ct.TensorType(name="attention_mask", shape=tuple(example[1].shape), dtype=np.int32),
    ]
    return ct.convert(traced, inputs=inputs, convert_to="mlprogram", compute_precision=precision)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--self-contained", action="store_true", help="use AneEncoder, not ane_models")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import coremltools as ct

    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = None if args.self_contained else project_distilbert(args.layers)
    source = "ane_models.distilbert.DistilBertModelANE"
    if model is None:
        model, source = AneEncoder(seq=args.seq, layers=args.layers).eval(), "self-contained AneEncoder"
    ids = torch.randint(0, 30522, (1, args.seq), dtype=torch.int32)
    mask = torch.ones(1, args.seq, dtype=torch.int32)
    mask[0, -args.seq // 8 :] = 0
    feed = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for label, precision in (("fp16", ct.precision.FLOAT16), ("fp32", ct.precision.FLOAT32)):
            paths[label] = Path(tmp) / f"encoder_{label}.mlpackage"
            convert(model, (ids, mask), precision).save(str(paths[label]))
        convert_seconds = time.perf_counter() - start
        start = time.perf_counter()
        runners = {
            "executor fp16 storage": MILExecutor(paths["fp16"]),
            "executor fp16 native": MILExecutor(paths["fp16"], mode="fp16_native"),
            "executor fp32 program": MILExecutor(paths["fp32"]),
        }
        load_seconds = time.perf_counter() - start
    ops = runners["executor fp16 storage"].op_count
    print(f"model: {source}")
    print(
        f"converted both programs in {convert_seconds:.1f} s, loaded three executors in {load_seconds:.1f} s"
    )
    print(
        f"model: {args.layers} layers, 768 wide, 12 heads, FFN 3072, seq {args.seq}; "
        f"the fp16 program runs {ops} ops"
    )

    def torch_forward():
        with torch.inference_mode():
            return model(ids, mask).numpy()

    calls = {"torch eager": torch_forward}
    for label, runner in runners.items():
        calls[label] = lambda runner=runner: next(iter(runner.run(feed).values()))

    reference = torch_forward()
    for label, call in calls.items():
        if label != "torch eager":
            print(f"  parity {label:<24} {psnr(reference, call()):6.1f} dB vs torch fp32")

    times = {label: [] for label in calls}
    for _ in range(args.repeats):
        for label, call in calls.items():
            start = time.perf_counter()
            call()
            times[label].append(time.perf_counter() - start)
    eager = statistics.median(times["torch eager"])
    print(f"median of {args.repeats} interleaved runs, torch threads = {torch.get_num_threads()}:")
    for label, samples in times.items():
        median = statistics.median(samples)
        print(f"  {label:<24} {median * 1e3:8.1f} ms   {median / eager:5.2f}x torch eager")


if __name__ == "__main__":
    main()
