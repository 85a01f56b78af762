"""The decoder run's checks that are not about the logits: fp16 hazards over both functions (non-finite
outputs, unrepresentable constants), placement per function, and tokens per second on a Mac."""

from __future__ import annotations

import numpy as np

NO_FLOOR = (
    "informational, not a gate: no tokens/s floor is published for converted decoders on the ANE, so the "
    "threshold is 0 (give one with --threshold NAME=VALUE)"
)


def _functions_feeds(o, prompt):
    n, capacity = o.prefill_len, o.context
    ids = np.zeros((1, n), np.int32)
    ids[0, : prompt.shape[1]] = prompt[0].numpy()
    prefill = {
        "input_ids": ids,
        "position": np.array([0], np.int32),
        "position_ids": np.arange(n, dtype=np.int32)[None],
        "attention_mask": np.ones((1, capacity), np.int32),
    }
    decode = {
        "input_ids": ids[:, -1:],
        "position": np.array([n], np.int32),
        "position_ids": np.array([[n]], np.int32),
        "attention_mask": np.ones((1, capacity), np.int32),
    }
    return prefill, decode


CONSTANTS_METRIC = (
    "constants of the prefill and decode functions that fp16 turns into Inf or 0 (masks at finfo.min, "
    "eps below 2**-25; coremltools' default rsqrt epsilon 1e-12 is reported, not counted)"
)


def hazards(converted, o, prompt, judge, details) -> None:
    """fp16_non_finite_ops over one prefill call and one decode step on its state (fp16 state programs);
    fp16_unrepresentable_constants over both functions' constants (any fp16 program), as for encoders."""
    from verification.mil.hazards import UNREPRESENTABLE_KINDS, find_hazards, scan_constants
    from verification.mil.program import load_program

    if o.precision != "fp16":
        reason = f"fp16 hazards are looked for in fp16 programs; this one is {o.precision}"
        judge("fp16_non_finite_ops", "ops whose fp16 output holds NaN/Inf", None, reason=reason)
        judge("fp16_unrepresentable_constants", CONSTANTS_METRIC, None, reason=reason)
        return
    if o.cache == "state":
        prefill, decode = _functions_feeds(o, prompt)
        reports = {"prefill": find_hazards(converted.path, prefill, function_name="prefill")}
        reports["decode"] = find_hazards(
            converted.path, decode, function_name="decode", states=reports["prefill"].states_after
        )
        bad = sum(r.first_non_finite is not None for r in reports.values())
        judge(
            "fp16_non_finite_ops",
            "calls (prefill, then one decode step on its state) with an op whose fp16 output holds NaN/Inf",
            bad,
        )
        warnings = {name: r.constant_warnings for name, r in reports.items()}
        details["hazards_text"] = "\n\n".join(f"{name}:\n{r.render(top=8)}" for name, r in reports.items())
    else:
        judge(
            "fp16_non_finite_ops",
            "ops whose fp16 output holds NaN/Inf (fp16 state programs)",
            None,
            reason=f"the hazard finder runs fp16 state programs; this one is {o.precision} {o.cache}",
        )
        from verification.coreml.scopes import op_modules

        program = load_program(converted.path)
        warnings = {
            name: scan_constants(
                program, "fp16 program", op_modules(str(converted.path), name), function_name=name
            )
            for name in ("prefill", "decode")
        }
    counted = [
        {"function": name, "constant": w.name, "kind": w.kind, "detail": w.detail, "used_by": list(w.used_by)}
        for name, found in warnings.items()
        for w in found
        if w.kind in UNREPRESENTABLE_KINDS
    ]
    judge("fp16_unrepresentable_constants", CONSTANTS_METRIC, len(counted))
    details["fp16_unrepresentable_constants"] = counted


def device_checks(path, backend, o, prompt, judge, details, *, measure=None) -> None:
    """Placement per function where a compute plan can be read, and tokens per second where Core ML runs;
    otherwise not measured, with the reason. ``measure`` (tests): replaces the timing."""
    from verification.decoders.ondevice import placement_per_function
    from verification.decoders.speed import measure_tokens_per_second, not_measured_reason
    from verification.ondevice.device import compute_plan_gate, detect, measurement_gate

    device = detect()
    plan_blocked, speed_blocked = compute_plan_gate(device), measurement_gate(device)
    metric = "worst share over the functions (prefill, decode) of ops the compute plan places on the ANE"
    if plan_blocked is None:
        reports = placement_per_function(path, device=device)
        details["placement_per_function"] = {name: r.to_dict() for name, r in reports.items()}
        shares = [
            c.value for r in reports.values() for c in r.checks if c.name == "ane_op_share" and c.measured
        ]
        reason = (
            None if shares else next((r.reason for r in reports.values() if r.reason), "no share measured")
        )
        judge("ane_op_share", metric, min(shares) if shares else None, reason=reason)
    else:
        judge("ane_op_share", metric, None, reason=plan_blocked)
    judge(
        "ane_speedup_vs_cpu_only",
        "decode tokens/s on CPU_AND_NE over CPU_ONLY",
        None,
        reason=speed_blocked
        or "decode timing on CPU_ONLY is not implemented yet (decode_tokens_per_second times CPU_AND_NE)",
    )
    blocked = not_measured_reason(backend)
    tokens_per_second(
        path, o, prompt, judge, details, measure=measure or measure_tokens_per_second, blocked=blocked
    )


def tokens_per_second(path, o, prompt, judge, details, *, measure, blocked) -> None:
    """``prefill_tokens_per_second`` and ``decode_tokens_per_second``: informational (see ``NO_FLOOR``)."""
    if blocked is None and o.cache != "state":
        blocked = f"timed for state-cache programs; this one has --cache {o.cache}"
    metrics = {
        "prefill_tokens_per_second": f"tokens per second of one prefill call (prefill length "
        f"{o.prefill_len}), median over timed rounds, Core ML CPU_AND_NE",
        "decode_tokens_per_second": f"tokens per second of the decode calls "
        f"({max(o.new_tokens - 1, 1)} per round, greedy), median over timed rounds, Core ML CPU_AND_NE",
    }
    metrics = {name: f"{metric}; informational (no published floor)" for name, metric in metrics.items()}
    if blocked is not None:
        for name, metric in metrics.items():
            judge(name, metric, None, reason=blocked)
        details["tokens_per_second"] = {"measured": False, "reason": blocked, "floor": NO_FLOOR}
        return
    timing = measure(
        path, prompt.numpy(), prefill_length=o.prefill_len, capacity=o.context, new_tokens=o.new_tokens
    )
    for name, metric in metrics.items():
        judge(name, metric, round(getattr(timing, name), 2))["reason"] = NO_FLOOR
    details["tokens_per_second"] = {"measured": True, **timing.to_dict(), "floor": NO_FLOOR}
