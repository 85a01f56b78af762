"""Placement and tokens per second of a causal LM package ``check`` judges, on a Mac.

The package's own functions and inputs (whatever its producer named them) are driven through the same
``PackageCausalLM`` the step checks use, on Core ML with its default compute units (CPU_AND_NE): one
prefill call of the prompt, then greedy decode steps, timed over ``ROUNDS`` rounds after a warm-up, the
median kept. Placement is read per function from Core ML's compute plan. Where neither can run (off
macOS, or on the MIL executor) each check is recorded as not measured, with the reason; both tokens per
second are informational (no published floor), as in ``run``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from ...decoders.speed import ROUNDS, WARMUP_ROUNDS, not_measured_reason
from ..decoder_checks import NO_FLOOR

SHARE_METRIC = "worst share over the package's functions of ops the compute plan places on the ANE"


def device_checks(planned, options, backend, prompt, judge, details, *, program=None, device=None, **hooks):
    """``ane_op_share`` and the two tokens per second. ``program()`` builds the driver (on Core ML);
    ``hooks`` (tests): ``placement``, ``clock``."""
    from ...decoders.ondevice import placement_per_function
    from ...ondevice.device import compute_plan_gate, detect, measurement_gate

    device = device or detect()
    functions = tuple(dict.fromkeys([planned.prefill, planned.decode]))
    blocked = compute_plan_gate(device)
    if blocked is None:
        placement = hooks.get("placement", placement_per_function)
        reports = placement(options.package, device=device, functions=functions)
        details["placement_per_function"] = {name: r.to_dict() for name, r in reports.items()}
        shares = [
            c.value for r in reports.values() for c in r.checks if c.name == "ane_op_share" and c.measured
        ]
        reason = (
            None if shares else next((r.reason for r in reports.values() if r.reason), "no share measured")
        )
        judge("ane_op_share", SHARE_METRIC, min(shares) if shares else None, reason=reason)
    else:
        judge("ane_op_share", SHARE_METRIC, None, reason=blocked)
    metrics = {
        "prefill_tokens_per_second": f"prompt tokens per second of one prefill call ({prompt.shape[1]} "
        "tokens), median over timed rounds, Core ML CPU_AND_NE; informational (no published floor)",
        "decode_tokens_per_second": f"tokens per second of {_steps(options)} greedy decode steps, median "
        "over timed rounds, Core ML CPU_AND_NE; informational (no published floor)",
    }
    blocked = measurement_gate(device) or not_measured_reason(backend)
    if blocked is not None or program is None:
        reason = blocked or "no program to time"
        for name, metric in metrics.items():
            judge(name, metric, None, reason=reason)
        details["tokens_per_second"] = {"measured": False, "reason": reason, "floor": NO_FLOOR}
        return
    timing = time_tokens(program(), prompt, _steps(options), clock=hooks.get("clock", time.perf_counter))
    for name, metric in metrics.items():
        judge(name, metric, round(timing[name], 2))["reason"] = NO_FLOOR
    details["tokens_per_second"] = {"measured": True, **timing, "floor": NO_FLOOR}


def _steps(options) -> int:
    return max(options.new_tokens - 1, 1)


def time_tokens(program, prompt, steps: int, *, clock: Callable[[], float] = time.perf_counter) -> dict:
    """Median prefill and decode tokens per second of ``program`` over ``ROUNDS`` rounds after
    ``WARMUP_ROUNDS``, each round from an empty cache: one prefill of ``prompt``, then ``steps`` greedy
    decode steps."""
    prefill_rates, decode_rates = [], []
    s = prompt.shape[1]
    for round_index in range(WARMUP_ROUNDS + ROUNDS):
        program.reset_cache()
        start = clock()
        token = int(np.argmax(program.prefill(prompt)[0, -1].numpy()))
        prefilled = clock()
        for step in range(steps):
            token = int(np.argmax(program.decode_step(np.array([[token]]), s + step)[0].numpy()))
        done = clock()
        if round_index >= WARMUP_ROUNDS:
            prefill_rates.append(s / max(prefilled - start, 1e-9))
            decode_rates.append(steps / max(done - prefilled, 1e-9))
    return {
        "prefill_tokens_per_second": statistics.median(prefill_rates),
        "decode_tokens_per_second": statistics.median(decode_rates),
        "rounds": ROUNDS,
        "warmup_rounds": WARMUP_ROUNDS,
        "decode_steps": steps,
    }
