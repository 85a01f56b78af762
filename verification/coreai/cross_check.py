"""The cross-check: one torch model converted twice, to Core ML (run by the project's MIL reference
executor) and to Core AI (run by Apple's interpreter), outputs compared with each other and with torch.

If the MIL executor and Apple's interpreter agree far more closely than either agrees with torch, that is
evidence, independent of the project, that the executor computes what an Apple runtime computes. In fp16
two independent roundings of the same program differ from each other by about as much as each differs
from torch (up to 3 dB lower PSNR: their errors add), so ``disagrees`` asks for more than that margin.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from verification.metrics import psnr

# Two independent error sources of equal size add in variance: -3 dB against each. Past that margin the
# two runtimes compute something different from each other, not just round differently.
INDEPENDENT_ROUNDING_MARGIN_DB = 3.0


@dataclass(frozen=True)
class Agreement:
    """One output of one model at one precision: PSNR of each runtime against torch and of the two."""

    model_id: str
    precision: str
    output: int
    mil_mode: str
    mil_vs_torch_db: float
    coreai_vs_torch_db: float
    mil_vs_coreai_db: float

    @property
    def disagrees(self) -> bool:
        """The two runtimes differ from each other by more than independent rounding explains."""
        floor = min(self.mil_vs_torch_db, self.coreai_vs_torch_db) - INDEPENDENT_ROUNDING_MARGIN_DB
        return self.mil_vs_coreai_db < floor


@dataclass(frozen=True)
class Timings:
    coremltools_seconds: float
    coreai_seconds: float


def torch_reference(model, inputs) -> list[np.ndarray]:
    with torch.no_grad():
        out = model(*inputs)
    out = (out,) if isinstance(out, torch.Tensor) else tuple(out)
    return [x.detach().float().numpy() for x in out]


def run_both(model, inputs, precision: str, *, mil_modes=None):
    """Convert ``model`` with coremltools and with Core AI at ``precision``, run both; returns
    ({mil_mode: outputs}, Core AI outputs, Timings). fp16 runs both MIL modes by default."""
    from verification.coreml import convert as coreml_convert
    from verification.coreml import predict as coreml_predict

    from .convert import convert
    from .runtime import predict

    start = time.perf_counter()
    mlmodel = coreml_convert(model, inputs, precision=precision)
    coremltools_seconds = time.perf_counter() - start
    program = convert(model, inputs, precision=precision)
    names = [d.name for d in mlmodel.get_spec().description.input]
    feeds = {name: x.numpy() for name, x in zip(names, inputs, strict=True)}
    output_names = [d.name for d in mlmodel.get_spec().description.output]
    modes = mil_modes or (("fp16_storage", "fp16_native") if precision == "fp16" else ("fp32",))
    mil = {}
    for mode in modes:
        outputs = coreml_predict(mlmodel, feeds, backend="mil", mode=mode)
        mil[mode] = [np.asarray(outputs[n], dtype=np.float32) for n in output_names]
    coreai = [np.asarray(v, dtype=np.float32) for v in predict(program, program.feeds(inputs)).values()]
    return mil, coreai, Timings(coremltools_seconds, program.conversion_seconds)


def cross_check(model_id: str, model, inputs, precision: str, *, mil_modes=None) -> list[Agreement]:
    """Every output of ``model`` at ``precision``: MIL executor vs Core AI interpreter vs torch (fp32)."""
    reference = torch_reference(model, inputs)
    mil, coreai, _ = run_both(model, inputs, precision, mil_modes=mil_modes)
    rows = []
    for mode, outputs in mil.items():
        if len(outputs) != len(reference) or len(coreai) != len(reference):
            counts = f"torch {len(reference)}, Core ML {len(outputs)}, Core AI {len(coreai)}"
            raise ValueError(f"{model_id}: the output counts differ: {counts}")
        for index, (ref, a, b) in enumerate(zip(reference, outputs, coreai, strict=True)):
            rows.append(Agreement(model_id, precision, index, mode, psnr(ref, a), psnr(ref, b), psnr(a, b)))
    return rows


class _Fp32Island(torch.nn.Module):
    """``module`` computed in fp32 inside an fp16 model (its input cast up, its output cast back)."""

    def __init__(self, module: torch.nn.Module):
        super().__init__()
        self.module = module.float()

    def forward(self, x):
        return self.module(x.float()).to(x.dtype)


# The module kinds an ablation keeps in fp32, and the Core AI ops they become.
ISLAND_KINDS = {
    "Linear (coreai broadcasting_batch_matmul)": torch.nn.Linear,
    "LayerNorm (coreai layer_norm composite or reduce_mean chain)": torch.nn.LayerNorm,
    "Conv2d (coreai conv2d)": torch.nn.Conv2d,
}


def _with_fp32_islands(model: torch.nn.Module, kind: type) -> torch.nn.Module:
    import copy

    half = copy.deepcopy(model).eval().half()
    for parent in list(half.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, kind):
                setattr(parent, name, _Fp32Island(child))
    return half


def locate_fp16_loss(model, inputs) -> dict[str, float]:
    """Which op family costs a Core AI fp16 program its precision: the worst output PSNR against torch fp32
    of the fp16 program as converted ("none"), and with each kind of ``ISLAND_KINDS`` kept in fp32 (only
    kinds the model has). The kind whose island recovers the most is where the fp16 loss is."""
    from .convert import CoreAIConversionError, convert
    from .runtime import predict

    reference = torch_reference(model, inputs)
    figures = {}
    for label, kind in {"none": None, **ISLAND_KINDS}.items():
        if kind is not None and not any(isinstance(m, kind) for m in model.modules()):
            continue
        variant = model if kind is None else _with_fp32_islands(model, kind)
        try:
            program = convert(variant, inputs, precision="fp16")
        except CoreAIConversionError:
            if kind is None:
                raise
            continue  # the model reads that module's weights directly: no island possible
        outputs = predict(program, program.feeds(inputs)).values()
        figures[label] = min(
            psnr(r, np.asarray(o, np.float32)) for r, o in zip(reference, outputs, strict=True)
        )
    return figures


def matmul_accumulation_probe(depth: int = 512, seed: int = 0) -> dict[str, float]:
    """One fp16 product of depth ``depth``, as a Core AI matmul, a Core AI 1x1 conv2d and a torch fp16
    GEMM, each against the exact product of the fp16-rounded operands, beside sequential fp16 accumulation
    (every partial sum rounded to fp16). PSNR in dB."""
    from .convert import convert
    from .runtime import predict

    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 16, depth, generator=generator)
    w = torch.randn(64, depth, generator=generator) / depth**0.5
    exact = x.half().double() @ w.half().double().t()

    class MatMul(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("w", w.t().contiguous())

        def forward(self, a):
            return a @ self.w

    conv = torch.nn.Conv2d(depth, 64, 1, bias=False)
    conv.weight.data = w[:, :, None, None].clone()

    def run(module, example):
        program = convert(module, (example,), precision="fp16")
        return torch.from_numpy(
            next(iter(predict(program, program.feeds((example,))).values())).astype(np.float32)
        )

    as_conv = run(conv, x.transpose(1, 2).unsqueeze(2)).squeeze(2).transpose(1, 2)
    sequential = torch.zeros(1, 16, 64, dtype=torch.float16)
    xh, wh = x.half().float(), w.half().float()
    for k in range(depth):
        sequential = (sequential.float() + xh[..., k : k + 1] * wh[:, k]).half()
    with torch.no_grad():
        gemm = (x.half() @ w.half().t()).float()
    return {
        "coreai_matmul": psnr(exact, run(MatMul(), x)),
        "coreai_conv2d": psnr(exact, as_conv),
        "torch_fp16_gemm": psnr(exact, gemm),
        "sequential_fp16_accumulation": psnr(exact, sequential.float()),
    }
