"""A stand-in for Core AI's OS runtime (``coreai.runtime`` on macOS 27) that answers with outputs recorded
from the bundled interpreter on Linux, so ``verification.coreai.predict``'s macOS path (specialization
options per compute unit, NDArray inputs by name, awaited calls, output order) runs in every test run.

It mirrors the documented surface the macOS path uses: ``SpecializationOptions.is_supported / default /
cpu_only / from_preferred_compute_unit_kind``, ``ComputeUnitKind.cpu / gpu / neural_engine``,
``await AIModel.load(path, options)``, ``model.load_function(name)``, ``function.desc`` (``input_names``,
``output_names``, ``input_descriptor(name).shape / .dtype``), ``await function(inputs)`` and ``NDArray``.

Re-record (after a Core AI upgrade): ``python tests/coreai/recorded_runtime.py`` from the repository root.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

RECORDED = Path(__file__).parent / "recorded"
MODEL_ID = "bert-Model"  # two outputs (hidden states, pooled): their order is checked
PRECISIONS = ("fp32", "fp16")


def recorded_path(precision: str) -> Path:
    return RECORDED / f"{MODEL_ID}-{precision}.npz"


def load_recorded(precision: str) -> dict[str, np.ndarray]:
    with np.load(recorded_path(precision)) as data:
        return {key: data[key] for key in data.files}


class NDArray:
    def __init__(self, data):
        if not isinstance(data, np.ndarray):
            raise TypeError(f"NDArray: expected a numpy array, got {type(data).__name__}")
        self._data = data
        self.dtype, self.shape = str(data.dtype), tuple(data.shape)

    def numpy(self):
        return self._data


class ComputeUnitKind:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"ComputeUnitKind.{self.name}"

    @classmethod
    def cpu(cls):
        return cls("cpu")

    @classmethod
    def gpu(cls):
        return cls("gpu")

    @classmethod
    def neural_engine(cls):
        return cls("neural_engine")


class SpecializationOptions:
    def __init__(self, preferred=None, cpu_only=False):
        self.preferred, self.cpu_only_ = preferred, cpu_only

    def __repr__(self):
        return "cpu_only" if self.cpu_only_ else f"preferred={self.preferred!r}"

    @staticmethod
    def is_supported():
        return True

    @classmethod
    def default(cls):
        return cls()

    @classmethod
    def cpu_only(cls):
        return cls(cpu_only=True)

    @classmethod
    def from_preferred_compute_unit_kind(cls, kind):
        if not isinstance(kind, ComputeUnitKind):
            raise TypeError(f"expected a ComputeUnitKind, got {type(kind).__name__}")
        return cls(preferred=kind)


class RecordedRuntime:
    """``coreai.runtime`` as the macOS path sees it, answering with ``outputs`` (name -> array, in order)."""

    def __init__(self, inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray]):
        self.inputs, self.outputs = inputs, outputs
        self.loads, self.calls = [], []
        self.NDArray, self.ComputeUnitKind, self.SpecializationOptions = (
            NDArray,
            ComputeUnitKind,
            SpecializationOptions,
        )
        runtime = self

        class AIModel:
            @staticmethod
            async def load(path, specialization_options=None):
                path = Path(path)
                if path.suffix != ".aimodel" or not (path / "main.mlirb").is_file():
                    raise RuntimeError(f"AIModel.load: not a Core AI asset: {path}")
                runtime.loads.append((path, specialization_options))
                return SimpleNamespace(load_function=runtime._function)

        self.AIModel = AIModel

    def _function(self, name):
        return _Function(self) if name == "main" else None


class _Function:
    def __init__(self, runtime: RecordedRuntime):
        self.runtime = runtime
        descriptors = {
            n: SimpleNamespace(shape=list(a.shape), dtype=str(a.dtype)) for n, a in runtime.inputs.items()
        }
        self.desc = SimpleNamespace(
            input_names=list(runtime.inputs),
            output_names=list(runtime.outputs),
            input_descriptor=descriptors.__getitem__,
        )

    async def __call__(self, inputs):
        self.runtime.calls.append(inputs)
        if not all(isinstance(v, NDArray) for v in inputs.values()):
            raise TypeError("inputs must be NDArray")
        # the real runtime's dict is not in output order either
        return {n: NDArray(self.runtime.outputs[n]) for n in reversed(list(self.runtime.outputs))}


def record() -> None:
    """Run the bundled interpreter on the tiny BERT and store its inputs and outputs."""
    here = Path(__file__).resolve()
    sys.path[:0] = [str(here.parents[2]), str(here.parent), str(here.parents[1] / "coreml")]
    from coreai_cases import model_under_test

    from verification.coreai import convert, predict

    RECORDED.mkdir(exist_ok=True)
    model, inputs = model_under_test(MODEL_ID)
    for precision in PRECISIONS:
        program = convert(model, inputs, precision=precision)
        feeds = program.feeds(inputs)
        outputs = predict(program, feeds)
        np.savez(
            recorded_path(precision),
            **{f"input:{k}": v for k, v in feeds.items()},
            **{f"output:{k}": v for k, v in outputs.items()},
        )
        print(f"recorded {recorded_path(precision)}: {list(outputs)}")


if __name__ == "__main__":
    record()
