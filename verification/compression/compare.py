"""The three-way comparison of a compressed program, each against the torch model in fp32:

1. fake-compressed torch: the torch model with its weights replaced by the dense weights read back from
   the compressed program (coremltools' value inference): compression loss alone;
2. the uncompressed program (MIL executor): conversion and fp16 loss alone;
3. the compressed program (MIL executor, the project's constexpr kernels): everything.

3 vs 1 is what the program adds on top of the compression (conversion, fp16, and any decoding error of
the kernels); 1 vs torch is the compression's own loss. Outputs with a sequence axis are compared at real
tokens; classifier outputs also by top-1 agreement, hidden states by the cosine of mean-pooled embeddings.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch

from ..coreml.scopes import op_modules
from ..metrics import psnr
from ..mil import MILExecutor
from .weights import dense_values, weights


@dataclass
class WeightMapping:
    """Which torch parameter each compressed weight of the program replaces, and how it was found."""

    parameters: dict = field(default_factory=dict)  # (op, input) -> parameter name
    methods: dict = field(default_factory=dict)  # (op, input) -> "scope", "scope, scaled" or "content"
    scales: dict = field(default_factory=dict)  # (op, input) -> s where program weight = s * parameter
    unmatched: list = field(default_factory=list)


def _fp16_key(array) -> bytes:
    return np.ascontiguousarray(np.asarray(array, dtype=np.float16)).tobytes()


def _scale_between(weight: np.ndarray, parameter: np.ndarray) -> float | None:
    """s such that ``weight`` is ``s * parameter`` to fp16 precision, else None. coremltools' passes fold
    a scalar multiply into the next conv's weight (the attention's 1/sqrt(head dim) into the query
    projection), so the program's weight can be a scaled copy of the torch parameter."""
    w, p = weight.astype(np.float64).ravel(), parameter.astype(np.float64).ravel()
    norm = float(p @ p)
    if norm == 0.0:
        return None
    scale = float(w @ p) / norm
    tolerance = 2.0**-10 * float(np.abs(w).max()) + 1e-12  # one fp16 rounding at the tensor's scale
    return scale if float(np.abs(w - scale * p).max()) <= tolerance and scale != 0.0 else None


def map_weights(
    model: torch.nn.Module, uncompressed, compressed, *, include_dense: bool = False
) -> WeightMapping:
    """Map each weight of the compressed program to a parameter of ``model``.

    First by the torch scope coremltools carries to the op (verification.coreml.scopes: the module path),
    taking that module's parameter whose fp16 values equal the uncompressed program's weight; else by
    content alone, over every parameter (a scope can name a parent module, e.g. an attention block for
    its projections), then as a scaled copy of a parameter of its scope (see ``_scale_between``). A weight
    with no such parameter is listed as unmatched, and stays as it is in the fake-compressed model.
    Weights the compression left dense are skipped unless ``include_dense`` (to name every weight)."""
    dense = dense_values(uncompressed)
    modules = op_modules(compressed)
    parameters = dict(model.named_parameters())
    by_content: dict[bytes, str] = {}
    for name, parameter in parameters.items():
        if parameter.numel() >= 2048:
            by_content.setdefault(_fp16_key(parameter.detach().numpy()), name)
    mapping = WeightMapping()
    for weight in weights(compressed):
        key = (weight.op, weight.input)
        if (weight.form == "dense" and not include_dense) or key not in dense:
            continue
        target = _fp16_key(dense[key])
        path = modules.get(weight.op)
        scoped = [
            name
            for name, parameter in parameters.items()
            if path and name.startswith(path + ".") and parameter.numel() == weight.count
        ]
        found = next((n for n in scoped if _fp16_key(parameters[n].detach().numpy()) == target), None)
        method, scale = "scope", 1.0
        if found is None:
            found, method = by_content.get(target), "content"
        if found is None:
            for name in scoped:
                fitted = _scale_between(dense[key], parameters[name].detach().numpy())
                if fitted is not None:
                    found, method, scale = name, "scope, scaled", fitted
                    break
        if found is None:
            mapping.unmatched.append(key)
            continue
        mapping.parameters[key] = found
        mapping.methods[key] = method
        mapping.scales[key] = scale
    return mapping


def fake_compressed(model: torch.nn.Module, compressed, mapping: WeightMapping) -> torch.nn.Module:
    """A copy of ``model`` in fp32 whose mapped parameters hold the compressed program's dense weights."""
    fake = copy.deepcopy(model).float().eval()
    values = dense_values(compressed)
    params = dict(fake.named_parameters())
    with torch.no_grad():
        for key, name in mapping.parameters.items():
            value = torch.from_numpy(np.asarray(values[key], dtype=np.float64) / mapping.scales[key])
            params[name].copy_(value.float().reshape(params[name].shape))
    return fake


def _first_output(result) -> torch.Tensor:
    if isinstance(result, (tuple, list)):
        result = result[0]
    if hasattr(result, "logits"):
        result = result.logits
    return result.detach().float()


def _comparable(output: np.ndarray, real: np.ndarray | None) -> np.ndarray:
    """(B, C, 1, S) outputs as (B, S, C); then at real tokens only when the output has a sequence axis."""
    if output.ndim == 4 and output.shape[2] == 1:
        output = np.transpose(output[:, :, 0, :], (0, 2, 1))
    if real is not None and output.ndim >= 2 and output.shape[:2] == real.shape:
        return output[real]
    return output


def is_classifier(output: np.ndarray, real: np.ndarray | None) -> bool:
    return output.ndim == 2 and (real is None or output.shape[1] != real.shape[1])


@dataclass
class Side:
    """One of the three against torch fp32: PSNR over every example, and the task-level figure."""

    psnr_db: float
    agreement: float | None  # top-1 agreement (classifiers) or min pooled-embedding cosine (encoders)


@dataclass
class ThreeWay:
    fake_vs_torch: Side  # compression loss alone
    uncompressed_vs_torch: Side  # conversion + fp16 loss
    compressed_vs_torch: Side  # everything
    compressed_vs_fake_psnr_db: float  # what the program adds to the compressed weights
    task: str  # "top-1 agreement" or "embedding cosine"
    mapped: int
    mapped_by_scope: int
    unmatched: int

    def to_dict(self) -> dict:
        def side(s: Side) -> dict:
            return {
                "psnr_db": round(s.psnr_db, 2),
                "agreement": None if s.agreement is None else round(s.agreement, 4),
            }

        return {
            "fake_compressed_vs_torch": side(self.fake_vs_torch),
            "uncompressed_vs_torch": side(self.uncompressed_vs_torch),
            "compressed_vs_torch": side(self.compressed_vs_torch),
            "compressed_vs_fake_compressed_psnr_db": round(self.compressed_vs_fake_psnr_db, 2),
            "task_metric": self.task,
            "weights_mapped": self.mapped,
            "weights_mapped_by_scope": self.mapped_by_scope,
            "weights_unmatched": self.unmatched,
        }


def _agreement(reference: list, candidate: list, reals: list, classifier: bool) -> float:
    if classifier:
        hits = [np.argmax(r, -1) == np.argmax(c, -1) for r, c in zip(reference, candidate, strict=True)]
        return float(np.mean(np.concatenate(hits)))
    cosines = []
    for r, c, real in zip(reference, candidate, reals, strict=True):
        for row in range(r.shape[0]):
            keep = real[row] if real is not None else slice(None)
            a = _comparable(r[row : row + 1], None)[0][keep].mean(0)
            b = _comparable(c[row : row + 1], None)[0][keep].mean(0)
            cosines.append(float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30)))
    return min(cosines)


def _side(reference, candidate, reals, classifier) -> Side:
    ref = np.concatenate([_comparable(r, m).reshape(-1) for r, m in zip(reference, reals, strict=True)])
    got = np.concatenate([_comparable(c, m).reshape(-1) for c, m in zip(candidate, reals, strict=True)])
    return Side(psnr(ref, got), _agreement(reference, candidate, reals, classifier))


def three_way(
    model: torch.nn.Module,
    examples: list[tuple],
    input_names: list[str],
    uncompressed,
    compressed,
    *,
    real_masks: list | None = None,
    executors: tuple | None = None,
) -> ThreeWay:
    """Compare as the module docstring says. ``examples``: input tuples for ``model`` (the torch model the
    programs were converted from); ``real_masks``: per example, a (B, S) bool array of real tokens (None:
    no sequence axis); ``executors``: already built (uncompressed, compressed) ``MILExecutor``s."""
    model = model.float().eval()
    mapping = map_weights(model, uncompressed, compressed)
    fake = fake_compressed(model, compressed, mapping)
    plain, packed = executors or (MILExecutor(uncompressed), MILExecutor(compressed))
    output = plain.output_names[0]
    reals = list(real_masks) if real_masks is not None else [None] * len(examples)
    torch_out, fake_out, plain_out, packed_out = [], [], [], []
    with torch.no_grad():
        for example in examples:
            torch_out.append(_first_output(model(*example)).numpy())
            fake_out.append(_first_output(fake(*example)).numpy())
            feed = {n: x.numpy() for n, x in zip(input_names, example, strict=True)}
            plain_out.append(plain.run(feed)[output].astype(np.float32))
            packed_out.append(packed.run(feed)[output].astype(np.float32))
    classifier = is_classifier(torch_out[0], reals[0])
    fake_side = _side(torch_out, fake_out, reals, classifier)
    return ThreeWay(
        fake_vs_torch=fake_side,
        uncompressed_vs_torch=_side(torch_out, plain_out, reals, classifier),
        compressed_vs_torch=_side(torch_out, packed_out, reals, classifier),
        compressed_vs_fake_psnr_db=_side(fake_out, packed_out, reals, classifier).psnr_db,
        task="top-1 agreement" if classifier else "embedding cosine",
        mapped=len(mapping.parameters),
        mapped_by_scope=sum(1 for m in mapping.methods.values() if m.startswith("scope")),
        unmatched=len(mapping.unmatched),
    )
