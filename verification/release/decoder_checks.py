"""The decoder run's checks: the program step by step against transformers (``step_checks``, shared by
``run`` and ``check``), fp16 hazards over both functions (non-finite outputs, unrepresentable constants),
placement per function, and tokens per second on a Mac."""

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


SEQUENTIAL_TOKENS = 16  # prefill vs one decode call per token, over the prompt's first tokens


def step_checks(program, prompt, tokens, reference, judge, details, tokenizer=None, prompt_text=None) -> None:
    """The decoder_* checks of ``program`` (a ``CausalLM`` over a converted package) against transformers'
    ``tokens`` and ``reference`` logits (``verification.decoders.checks.reference_logits``)."""
    from verification.decoders.checks import (
        NEAR_TIE_GAP,
        compare_steps,
        free_running_agreement,
        is_degenerate,
        prefill_vs_sequential,
        token_agreement,
    )

    figures = compare_steps(program, tokens, reference, prompt.shape[1])
    agreement = token_agreement(program, prompt, tokens)
    sequential = prefill_vs_sequential(program, prompt[:, :SEQUENTIAL_TOKENS])
    judge(
        "decoder_step_psnr_db",
        "worst PSNR over the prefill and every decode step's logits vs transformers fp32 (teacher-forced)",
        round(figures.worst_psnr_db, 2),
    )
    judge(
        "decoder_argmax_agreement",
        "share of steps whose argmax is transformers' greedy token (teacher-forced)",
        round(figures.argmax_agreement, 4),
    )
    ties, confident = figures.near_ties, figures.confident_agreement
    none_confident = (
        f"every one of the {len(figures.top2_gap)} positions is a near-tie (transformers' top-2 gap "
        f"under {NEAR_TIE_GAP}): no token can be held against the program"
    )
    judge(
        "decoder_confident_token_agreement",
        f"share of new-token positions with transformers' top-2 probability gap >= {NEAR_TIE_GAP} "
        f"whose argmax is transformers' token (teacher-forced; {len(ties)} near-ties not counted)",
        None if confident != confident else round(confident, 4),
        reason=none_confident if confident != confident else None,
    )
    judge(
        "decoder_max_kl_divergence",
        "largest per-position KL divergence (nats) of the program's next-token distribution from "
        "transformers' (teacher-forced)",
        float(f"{figures.max_kl_divergence:.3g}"),
    )
    before_tie = ties[0] if ties else len(figures.top2_gap)
    free = free_running_agreement(agreement, tokens[0, prompt.shape[1] :], before_tie)
    judge(
        "decoder_token_agreement",
        f"share of free-running greedy tokens equal to transformers', over the {before_tie} "
        "positions before the first near-tie",
        free,
        reason=None if before_tie else "the first new-token position is a near-tie",
    )
    judge(
        "decoder_prefill_vs_sequential_psnr_db",
        "PSNR of the prompt's logits, one prefill vs one "
        f"decode call per token (first {min(SEQUENTIAL_TOKENS, prompt.shape[1])} tokens)",
        round(sequential, 2),
    )
    details["decoder"] = {
        "step_psnr_db": [round(v, 2) for v in figures.psnr_db],
        "top5_overlap": figures.top5_overlap,
        "top2_gap": [round(g, 4) for g in figures.top2_gap],
        "kl_divergence": [float(f"{k:.3g}") for k in figures.kl_divergence],
        "near_tie_positions": ties,
        "degenerate": is_degenerate(agreement.tokens),
        "first_diverging_step": agreement.first_diverging_step,
        "prompt_tokens": prompt[0].tolist(),
        "generated_tokens": list(agreement.tokens),
        "reference_tokens": tokens[0, prompt.shape[1] :].tolist(),
    }
    if tokenizer is not None:
        details["decoder"]["generated_text"] = tokenizer.decode(list(agreement.tokens))
        details["decoder"]["prompt_text"] = prompt_text


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
