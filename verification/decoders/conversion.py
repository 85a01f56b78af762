"""Converting an optimized causal LM (``ane_models`` Llama family) to one Core ML package with two functions.

``prefill`` takes ``prefill_length`` tokens, ``decode`` one; both write the KV cache at a runtime slot
``position`` and share one copy of the weights (a multifunction package). The cache comes in two forms:

- ``state``: the model's cache buffers become Core ML state (iOS 18; fp16, the only state type): each
  call reads and updates it in place, nothing crosses the program's boundary.
- ``io``: the caches are inputs and outputs (``k_cache_in`` / ``v_cache_in`` -> ``k_cache_out`` /
  ``v_cache_out``) and the caller carries them from call to call. The write is arithmetic over one-hot
  slots (no scatter, which the Neural Engine lacks), and the cache keeps the program's precision.

The conversion facts this relies on (fp16-only states, trace rather than torch.export, no scatter):
docs/coreml-state.md.

Inputs of both functions: ``input_ids`` (1, N) int32, ``position`` (1,) int32 (the first cache slot
written), ``position_ids`` (1, N) int32 (rotary positions), ``attention_mask`` (1, capacity) int32 (1 =
a real token). Output ``logits`` (1, N, vocab).
"""

from __future__ import annotations

import functools
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import coremltools as ct
import torch
from torch import nn

from ane_layers.kv_cache import KVCache
from verification.coreml import convert, package_size, program_cache, save, save_multifunction

from . import forked_conversion

_PARENT = os.getpid()  # the process that imported this module: forked children differ
CACHE_FORMS = ("state", "io")
FUNCTIONS = ("prefill", "decode")
STATE_BUFFERS = ("lm.model.kv_cache.k_cache", "lm.model.kv_cache.v_cache")  # states lm_model_kv_cache_*
INPUT_NAMES = ("input_ids", "position", "position_ids", "attention_mask")
IO_CACHE_INPUTS = ("k_cache_in", "v_cache_in")
IO_CACHE_OUTPUTS = ("k_cache_out", "v_cache_out")


class _StateForm(nn.Module):
    """The model called with the program's inputs; its cache buffers are the state."""

    def __init__(self, lm):
        super().__init__()
        self.lm = lm

    def forward(self, input_ids, position, position_ids, attention_mask):
        return self.lm(input_ids, position[0], attention_mask, position_ids)[0]


class _OneHotCache(KVCache):
    """A KV cache whose writes are functional: the caches come in as tensors and the new ones go out."""

    def load(self, k_cache, v_cache):
        self.k_layers, self.v_layers = list(k_cache.unbind(0)), list(v_cache.unbind(0))

    def write(self, layer, keys, values, position):
        n = keys.shape[3]
        slots = torch.arange(self.capacity)
        # (N, capacity): 1 where new column i lands; the write is a product and a blend, no scatter.
        one_hot = (slots[None, :] == (torch.arange(n) + position)[:, None]).to(keys.dtype)
        keep = 1 - one_hot.sum(dim=0)
        k = self.k_layers[layer] * keep[None, :, None, None] + torch.einsum("bcqn,nk->bkqc", keys, one_hot)
        v = self.v_layers[layer] * keep + torch.matmul(values, one_hot)
        self.k_layers[layer], self.v_layers[layer] = k, v
        return k, v


class _IOForm(nn.Module):
    """The model with its cache as inputs and outputs."""

    def __init__(self, lm):
        super().__init__()
        self.lm = lm
        c = lm.model.kv_cache
        self.cache = _OneHotCache(c.num_layers, c.batch_size, c.num_kv_heads, c.head_dim, c.capacity)

    def forward(self, input_ids, position, position_ids, attention_mask, k_cache_in, v_cache_in):
        kept, self.lm.model.kv_cache = self.lm.model.kv_cache, self.cache
        try:
            self.cache.load(k_cache_in, v_cache_in)
            logits = self.lm(input_ids, position[0], attention_mask, position_ids)[0]
            return logits, torch.stack(self.cache.k_layers), torch.stack(self.cache.v_layers)
        finally:
            self.lm.model.kv_cache = kept


@dataclass
class ConvertedDecoder:
    """A saved two-function decoder package and what it was built with."""

    path: Path
    cache: str
    precision: str
    prefill_length: int
    capacity: int
    package_bytes: int
    seconds: dict
    processes: dict  # forked: converted side by side; tree_peak_mb: the process tree's sampled peak (PSS)


def example_inputs(lm, n: int, cache: str) -> tuple:
    c = lm.decoder_config
    inputs = (
        torch.zeros(1, n, dtype=torch.int32),
        torch.zeros(1, dtype=torch.int32),
        torch.arange(n, dtype=torch.int32)[None],
        torch.ones(1, c.cache_capacity, dtype=torch.int32),
    )
    if cache == "io":
        k, v = lm.model.kv_cache.shapes
        inputs += (torch.zeros(k), torch.zeros(v))
    return inputs


def check_decoder(lm, cache: str, prefill_length: int | None) -> int:
    """The prefill length to convert with, after checking the model and options (before any tracing)."""
    if cache not in CACHE_FORMS:
        raise ValueError(f"cache: expected one of {list(CACHE_FORMS)}, got {cache!r}")
    config = getattr(lm, "decoder_config", None)
    if config is None or not hasattr(lm, "model") or not isinstance(lm.model.kv_cache, KVCache):
        raise ValueError(
            f"expected an ane_models causal LM (LlamaForCausalLMANE, from ane_models.optimize), got "
            f"{type(lm).__name__}"
        )
    if lm.batch_size != 1:
        raise ValueError(f"batch size: expected 1 (the converted program's), got {lm.batch_size}")
    n = config.prefill_length if prefill_length is None else prefill_length
    if not isinstance(n, int) or not 1 <= n <= config.prefill_length:
        raise ValueError(f"prefill_length: expected 1..{config.prefill_length} (the model's), got {n!r}")
    return n


def convert_decoder(
    lm,
    path: str | os.PathLike,
    *,
    cache: str = "state",
    precision: str = "fp16",
    prefill_length: int | None = None,
    parallel: bool | None = None,
) -> ConvertedDecoder:
    """Convert ``lm`` (``ane_models.optimize`` of a Llama-family causal LM, batch 1) to a package at
    ``path`` with the functions ``prefill`` (``prefill_length`` tokens, default the model's) and
    ``decode`` (one token), the cache in form ``cache``; the package is the only thing written.
    ``parallel``: convert the two functions in forked processes side by side (default: where
    ``forked_conversion.can_fork``)."""
    n = check_decoder(lm, cache, prefill_length)
    lm = lm.eval()
    lm.reset_cache()
    wrapper = _StateForm(lm) if cache == "state" else _IOForm(lm)
    names = list(INPUT_NAMES) + (list(IO_CACHE_INPUTS) if cache == "io" else [])
    outputs = ["logits"] + (list(IO_CACHE_OUTPUTS) if cache == "io" else [])
    forked = forked_conversion.can_fork() if parallel is None else parallel
    tree_peak_mb = None
    with tempfile.TemporaryDirectory(prefix=f".{Path(path).stem}-functions-", dir=Path(path).parent) as parts:
        jobs = {
            name: functools.partial(
                _convert_function, wrapper, lm, tokens, cache, precision, names, outputs, Path(parts) / name
            )
            for name, tokens in (("prefill", n), ("decode", 1))
        }
        if forked:  # each function in its own process, side by side
            results, tree_peak_mb = forked_conversion.run_forked(jobs)
            for result in results.values():
                program_cache.EVENTS.extend(result["cache_events"])
        else:  # one function's converted program in memory at a time: the other waits on disk
            results = {}
            for name, job in jobs.items():
                results[name] = job()
                lm.reset_cache()  # tracing ran the model once: leave its cache empty
        saved_parts = {name: Path(parts) / name / f"{name}.mlpackage" for name in jobs}
        saved = save_multifunction(saved_parts, path, default_function_name="decode")
    seconds = {name: result["seconds"] for name, result in results.items()}
    processes = {"forked": forked, "tree_peak_mb": None if tree_peak_mb is None else round(tree_peak_mb, 1)}
    return ConvertedDecoder(
        saved, cache, precision, n, lm.decoder_config.cache_capacity, package_size(saved), seconds, processes
    )


def _convert_function(wrapper, lm, tokens, cache, precision, names, outputs, folder: Path) -> dict:
    """Convert one function and save it in ``folder``; its seconds and the program cache's events."""
    start, events = time.perf_counter(), len(program_cache.EVENTS)
    if os.getpid() != _PARENT:
        torch.set_num_threads(1)  # a forked child: the other function has the other core
    mlmodel = convert(
        wrapper,
        example_inputs(lm, tokens, cache),
        precision=precision,
        input_names=names,
        output_names=outputs,
        states=list(STATE_BUFFERS) if cache == "state" else None,
        minimum_deployment_target=ct.target.iOS18,
    )
    folder.mkdir()
    save(mlmodel, folder / f"{folder.name}.mlpackage")
    return {"seconds": time.perf_counter() - start, "cache_events": program_cache.EVENTS[events:]}
