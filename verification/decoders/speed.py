"""Tokens per second of a converted decoder on a Mac: its prefill and decode functions timed through Core ML.

Each function is loaded as the selected one (``MLModel(path, function_name=..., compute_units=...)``). One
state, made by ``make_state()`` of the prefill model, carries the KV cache from the prefill call into the
decode calls (``MLModel.predict(inputs, state=state)``), as ``verification.coreml.StatefulSession`` does.

A round: a fresh state, one prefill call over the prompt (padded to the program's prefill length, as
``ProgramCausalLM`` pads it), then decode calls, each fed the previous call's greedy token. One untimed
warm-up round first (the first predictions pay for loading the program onto the compute units), then
``rounds`` timed rounds. Reported: the median over the rounds of prefill tokens/s (the prefill length, the
tokens the call computes, over its time) and of decode tokens/s (decode calls over their summed time).

Off macOS, or on another backend, nothing is timed: ``not_measured_reason`` says why.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from verification.ondevice.speedup import median

COMPUTE_UNITS = "CPU_AND_NE"
ROUNDS, WARMUP_ROUNDS = 3, 1


@dataclass(frozen=True)
class TokensPerSecond:
    prefill_tokens_per_second: float
    decode_tokens_per_second: float
    prefill_seconds: list  # one prefill call per round
    decode_seconds: list  # per round, the decode calls' times summed
    prefill_tokens: int  # the program's prefill length: the tokens one prefill call computes
    prompt_tokens: int
    decode_steps: int  # decode calls per round
    rounds: int
    warmup_rounds: int
    compute_units: str

    def to_dict(self) -> dict:
        return asdict(self)


def not_measured_reason(backend: str, system: str | None = None, machine: str | None = None) -> str | None:
    """None where tokens/s can be timed (macOS, the coreml backend), else why not."""
    system = system or platform.system()
    machine = machine or platform.machine()
    if system != "Darwin":
        return f"Core ML runs only on macOS; this run: {system} {machine}, backend {backend}"
    if backend != "coreml":
        return (
            f"timed through Core ML only; this run uses backend {backend} (the MIL reference executor's "
            "speed says nothing of a device)"
        )
    return None


def _load_function(path: str, function_name: str, compute_units: str):
    import coremltools as ct

    return ct.models.MLModel(
        str(path), function_name=function_name, compute_units=getattr(ct.ComputeUnit, compute_units)
    )


def _feed(ids: np.ndarray, position: int, positions: np.ndarray, capacity: int) -> dict:
    return {
        "input_ids": ids.astype(np.int32),
        "position": np.array([position], np.int32),
        "position_ids": positions.astype(np.int32),
        "attention_mask": np.ones((1, capacity), np.int32),
    }


def measure_tokens_per_second(
    path,
    prompt_ids,
    *,
    prefill_length: int,
    capacity: int,
    new_tokens: int,
    compute_units: str = COMPUTE_UNITS,
    rounds: int = ROUNDS,
    warmup_rounds: int = WARMUP_ROUNDS,
    load_function: Callable = _load_function,
    clock: Callable[[], float] = time.perf_counter,
) -> TokensPerSecond:
    """Time the package at ``path`` (a state-cache decoder: functions prefill and decode) on
    ``prompt_ids`` (shape (1, S), S <= ``prefill_length``), generating ``new_tokens`` greedily (the first
    from the prefill call, so ``new_tokens - 1`` decode calls, at least one). ``load_function(path, name,
    units)`` and ``clock`` are injectable for tests."""
    ids = np.asarray(prompt_ids).reshape(1, -1).astype(np.int64)
    s = ids.shape[1]
    steps = max(new_tokens - 1, 1)
    if not 1 <= s <= prefill_length or s + steps > capacity or rounds < 1:
        raise ValueError(
            f"expected 1 <= prompt tokens {s} <= prefill length {prefill_length}, prompt + {steps} decode "
            f"steps <= capacity {capacity}, rounds {rounds} >= 1"
        )
    prefill = load_function(str(path), "prefill", compute_units)
    decode = load_function(str(path), "decode", compute_units)
    padded = np.concatenate([ids, np.zeros((1, prefill_length - s), ids.dtype)], axis=1)
    positions = np.concatenate([np.arange(s), np.full(prefill_length - s, s - 1)])[None]
    prefill_feed = _feed(padded, 0, positions, capacity)

    def one_round() -> tuple[float, float]:
        state = prefill.make_state()
        before = clock()
        logits = prefill.predict(prefill_feed, state=state)["logits"]
        prefill_time = clock() - before
        token = int(np.asarray(logits)[0, s - 1].argmax())
        decode_time = 0.0
        for position in range(s, s + steps):
            feed = _feed(np.array([[token]]), position, np.array([[position]]), capacity)
            before = clock()
            logits = decode.predict(feed, state=state)["logits"]
            decode_time += clock() - before
            token = int(np.asarray(logits)[0, -1].argmax())
        return prefill_time, decode_time

    for _ in range(warmup_rounds):
        one_round()
    timed = [one_round() for _ in range(rounds)]
    prefill_seconds, decode_seconds = [t[0] for t in timed], [t[1] for t in timed]
    return TokensPerSecond(
        prefill_tokens_per_second=median([prefill_length / t for t in prefill_seconds]),
        decode_tokens_per_second=median([steps / t for t in decode_seconds]),
        prefill_seconds=prefill_seconds,
        decode_seconds=decode_seconds,
        prefill_tokens=prefill_length,
        prompt_tokens=s,
        decode_steps=steps,
        rounds=rounds,
        warmup_rounds=warmup_rounds,
        compute_units=compute_units,
    )
