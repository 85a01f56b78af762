"""``check`` of a causal LM package: a prefill/decode pair of functions (``ane-verify run``'s form) or one
function that takes any number of tokens (Apple's stateful-model recipe), with the KV cache as state.

The package is driven as a ``CausalLM`` (``PackageCausalLM``), so the same step-by-step checks as ``run``
judge it against transformers: every step's logits, token agreement, prefill against sequential decoding.
Each call's inputs are built by role: token ids, the start ``position``, ``position_ids``, a 0/1
``attention_mask`` over the cache's slots, or an additive ``causal_mask`` (query x key), as wide as the
cache or, where its key axis is flexible, as the keys seen so far (Apple's recipe reads the position
from it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from .encoder_check import ADDITIVE_MASKED, as_reference_layout
from .interface import Flexible
from .mapping import (
    DECODER_INPUTS,
    Mapping,
    MappingError,
    check_map_names,
    layout_by_shape,
    layout_shapes,
    match_inputs,
    match_outputs,
    match_states,
)

DEFAULT_PREFILL = 64


@dataclass
class DecoderPlan:
    prefill: str
    decode: str
    roles: dict  # function -> {role: InputMatch}
    logits: dict  # function -> OutputMatch
    capacity: int
    prefill_length: int  # tokens a prefill call takes (fixed: padded to it)
    padded: bool  # the prefill function takes exactly prefill_length tokens
    prompt_length: int
    new_tokens: int
    mapping: Mapping
    vocab: int = 0


def _functions(interface, map_file) -> tuple[str, str, str]:
    names = [f.name for f in interface.functions]
    if "prefill" in map_file.functions or "decode" in map_file.functions:
        prefill = map_file.functions.get("prefill", map_file.functions.get("decode"))
        decode = map_file.functions.get("decode", prefill)
        return prefill, decode, "--map"
    if "prefill" in names and "decode" in names:
        return "prefill", "decode", "by name"
    return interface.default_function, interface.default_function, "the package's default function, for both"


def _token_axis(interface, function: str, roles: dict):
    return interface.function(function).input(roles[function]["input_ids"].name).shape[1]


def _capacity(interface, plan_roles: dict, decode: str, map_file) -> int:
    if map_file.context is not None:
        return map_file.context
    roles = plan_roles[decode]
    function = interface.function(decode)
    for role in ("attention_mask", "causal_mask"):
        if role in roles:
            last = function.input(roles[role].name).shape[-1]
            if isinstance(last, int):
                return last
            if last.upper is not None:
                return last.upper
    raise MappingError(
        f"{interface.path}: the KV cache's capacity cannot be told (no mask of a fixed or bounded key axis); "
        "give --map FILE with context = SLOTS"
    )


def plan(interface, reference, map_file, options) -> DecoderPlan:
    where = interface.path
    prefill, decode, how = _functions(interface, map_file)
    functions = list(dict.fromkeys([prefill, decode]))
    check_map_names(interface, functions, map_file)
    states = match_states(interface, functions, map_file)
    if not interface.function(decode).states:
        raise MappingError(
            f"{where}: function {decode!r} declares no state; check drives a causal LM whose KV cache is "
            "Core ML state (iOS 18), as run --cache state and Apple's recipe make it"
        )
    roles = {
        name: {
            m.role: m
            for m in match_inputs(interface.function(name), DECODER_INPUTS, map_file, f"{where} {name!r}")
        }
        for name in functions
    }
    tokens = _token_axis(interface, prefill, roles)
    one = _token_axis(interface, decode, roles)
    if not (one == 1 or (isinstance(one, Flexible) and one.admits(1))):
        raise MappingError(
            f"{where}: function {decode!r} takes {one} tokens; a decode step feeds 1: give --map FILE with "
            "[functions] decode = NAME"
        )
    capacity = _capacity(interface, roles, decode, map_file)
    padded = isinstance(tokens, int)
    if padded:
        prefill_length = tokens
    else:
        prefill_length = min(options.prefill_len or DEFAULT_PREFILL, tokens.upper or capacity, capacity - 1)
    prompt_length = min(options.prefill_len or prefill_length, prefill_length)
    if options.prefill_len is not None and options.prefill_len > prefill_length:
        raise MappingError(
            f"--prefill-len {options.prefill_len}: the package's prefill takes {prefill_length}"
        )
    new_tokens = options.new_tokens
    if prompt_length + new_tokens - 1 > capacity or (padded and prefill_length + 1 > capacity):
        raise MappingError(
            f"--new-tokens {new_tokens}: a prompt of {prompt_length} and {new_tokens} new tokens do not fit "
            f"the package's {capacity} cache slots"
        )
    vocab = int(reference.model.config.vocab_size)
    logits = {}
    for name, length in ((prefill, prefill_length), (decode, 1)):
        logits[name] = match_outputs(
            interface.function(name),
            {"logits": ("bsc", vocab)},
            1,
            length,
            map_file,
            f"{where} function {name!r}",
            only=("logits",),
        )[0]
    mapping = Mapping(
        "decoder",
        {name: list(roles[name].values()) for name in functions},
        list({m.name: m for m in logits.values()}.values()),
        {"prefill": prefill, "decode": decode},
        states,
        notes=[f"functions: {how}", f"cache capacity {capacity} slots"],
    )
    return DecoderPlan(
        prefill,
        decode,
        roles,
        logits,
        capacity,
        prefill_length,
        padded,
        prompt_length,
        new_tokens,
        mapping,
        vocab,
    )


class PackageCausalLM:
    """``prefill`` / ``decode_step`` / ``reset_cache`` over a stateful package, inputs built by role."""

    def __init__(self, path, planned: DecoderPlan, decoder_config, *, backend="auto", observe=None):
        from ...coreml import StatefulSession

        self.session = StatefulSession(path, backend=backend)
        self.plan, self.batch_size, self.observe = planned, 1, observe
        self.decoder_config = decoder_config
        self.interface = {f.name: f for f in _functions_of(self.session)}
        self.state = None
        self.reset_cache()

    def reset_cache(self, batch_size: int | None = None) -> None:
        if batch_size not in (None, 1):
            raise ValueError(f"batch_size: expected 1 (the package's), got {batch_size}")
        self.state = self.session.make_state(self.plan.decode)

    def _feed(self, function: str, ids: np.ndarray, position: int) -> dict:
        q = ids.shape[1]
        feed = {}
        for role, match in self.plan.roles[function].items():
            feature = self.interface[function].input(match.name)
            dtype = (
                np.int32
                if feature.dtype.startswith("int")
                else (np.float16 if feature.dtype == "fp16" else np.float32)
            )
            if role == "input_ids":
                value = ids
            elif role == "position":
                value = np.array([position])
            elif role == "position_ids":
                value = (np.arange(q) + position)[None]
            elif role == "attention_mask":
                value = np.ones((1, self.plan.capacity))
                value = value if match.form == "keep" else np.zeros_like(value)
            else:  # causal_mask (1, 1, q, keys)
                keys = feature.shape[-1] if isinstance(feature.shape[-1], int) else position + q
                visible = np.arange(keys)[None, :] <= (position + np.arange(q))[:, None]
                masked = np.where(visible, 0.0, ADDITIVE_MASKED)
                value = visible.astype(np.float32) if match.form == "keep" else masked
                value = value.reshape(1, 1, q, keys)
            feed[match.name] = np.asarray(value).astype(dtype)
        return feed

    def _call(self, function: str, ids: np.ndarray, position: int) -> np.ndarray:
        feed = self._feed(function, ids.astype(np.int32), position)
        outputs = self.session.predict(feed, function_name=function, state=self.state)
        if self.observe is not None:
            self.observe(function, feed, outputs)
        match = self.plan.logits[function]
        logits = np.asarray(outputs[match.name], np.float32)
        if match.layout is None:  # the package declares no output shape: tell the layout from this one
            shapes = layout_shapes("bsc", 1, ids.shape[1], self.plan.vocab)
            layout = layout_by_shape(logits.shape, shapes, f"{match.name} {logits.shape}", "logits", function)
            match = self.plan.logits[function] = dataclasses.replace(match, layout=layout)
        return as_reference_layout(logits, match.layout)

    def prefill(self, input_ids, position=0, position_ids=None, attention_mask=None) -> torch.Tensor:
        ids = np.asarray(input_ids, np.int64).reshape(1, -1)
        s, n = ids.shape[1], self.plan.prefill_length
        if s > n:
            raise ValueError(f"input_ids: expected at most {n} tokens (the package's prefill), got {s}")
        if self.plan.padded:  # padding's keys land after the prompt: masked, then overwritten by decode steps
            ids = np.concatenate([ids, np.zeros((1, n - s), ids.dtype)], axis=1)
        logits = self._call(self.plan.prefill, ids, int(position))
        return torch.from_numpy(np.ascontiguousarray(logits[:, :s]))

    def decode_step(self, input_ids, position, position_ids=None, attention_mask=None) -> torch.Tensor:
        ids = np.asarray(input_ids, np.int64).reshape(1, 1)
        if int(position) + 1 > self.plan.capacity:
            raise ValueError(f"decode_step: slot {position} is past the package's {self.plan.capacity} slots")
        return torch.from_numpy(np.ascontiguousarray(self._call(self.plan.decode, ids, int(position))[:, -1]))


def _functions_of(session):
    from .interface import read_interface

    return read_interface(session.spec, str(session.path)).functions


def _decoder_config(model, planned: DecoderPlan):
    from ane_models.llama import decoder_config

    config = model.config
    return decoder_config(
        config,
        config.model_type,
        cache_capacity=planned.capacity,
        prefill_length=planned.prefill_length,
        batch_size=1,
        rms_norm_eps=float(getattr(config, "rms_norm_eps", 1e-6)),
        generation_config=getattr(model, "generation_config", None),
    )


def _prompt(reference, options, length: int) -> tuple[torch.Tensor, dict]:
    from ..decoder_pipeline import DEFAULT_PROMPT, PROMPT_SEED

    lengths = {"prefill_len": length, "new_tokens": options.new_tokens}
    tokenizer = reference.tokenizer
    if tokenizer is not None:
        text = options.texts[0] if options.texts else DEFAULT_PROMPT
        ids = tokenizer(text, return_tensors="pt").input_ids[:, :length].long()
        origin = "--text" if options.texts else "default text"
        return ids, {"source": origin, "text": text, "tokens": ids.shape[1], **lengths}
    if options.texts:
        raise MappingError(f"--text: the reference {reference.label!r} has no tokenizer to read it with")
    generator = torch.Generator().manual_seed(PROMPT_SEED)
    ids = torch.randint(0, int(reference.model.config.vocab_size), (1, length), generator=generator)
    return ids, {"source": "seed", "seed": PROMPT_SEED, "tokens": length, **lengths}


def run_stages(stage, planned: DecoderPlan, reference, options, backend, judge, details):
    from verification.decoders.checks import reference_logits

    from .. import decoder_checks, decoder_zoo

    prompt, origin = _prompt(reference, options, planned.prompt_length)
    origin["context"] = planned.capacity
    calls: dict = {}

    def record(function, feed, outputs):
        calls.setdefault(function, feed)

    def step_by_step():
        tokens, expected = reference_logits(reference.model, prompt, options.new_tokens)
        program = PackageCausalLM(
            options.package,
            planned,
            _decoder_config(reference.model, planned),
            backend=backend,
            observe=record,
        )
        text = origin.get("text")
        decoder_checks.step_checks(
            program, prompt, tokens, expected, judge, details, reference.tokenizer, text
        )

    stage(1, step_by_step)
    matched = {m.name: m for m in planned.logits.values()}.values()  # layouts told by the first calls
    details["mapping"]["outputs"] = [vars(m) for m in matched]
    stage(2, lambda: _hazards(options, planned, calls, judge, details))
    source = decoder_zoo.source_section(reference.decoder_source, origin)
    config = {
        "seq_len": planned.prefill_length,
        "batch_size": 1,
        "context": planned.capacity,
        "new_tokens": options.new_tokens,
        "functions": [planned.prefill, planned.decode],
    }
    return config, source, prompt


def device_stage(planned: DecoderPlan, reference, options, backend, prompt, judge, details) -> None:
    """Placement and tokens per second (on a Mac), driving the package as the step checks do."""
    from .decoder_device import device_checks

    def program():
        config = _decoder_config(reference.model, planned)
        return PackageCausalLM(options.package, planned, config, backend=backend)

    device_checks(planned, options, backend, prompt, judge, details, program=program)


def _hazards(options, planned: DecoderPlan, calls: dict, judge, details) -> None:
    """fp16_non_finite_ops over the first prefill call and the first decode step on its state."""
    from ...mil.hazards import UNREPRESENTABLE_KINDS, find_hazards

    if options.precision != "fp16":
        reason = f"fp16 hazards are looked for in fp16 packages; this one computes in {options.precision}"
        judge("fp16_non_finite_ops", "calls with an op whose fp16 output holds NaN/Inf", None, reason)
        judge("fp16_unrepresentable_constants", "constants fp16 turns into Inf or 0", None, reason)
        return
    first = find_hazards(options.package, calls[planned.prefill], function_name=planned.prefill)
    second = find_hazards(
        options.package, calls[planned.decode], function_name=planned.decode, states=first.states_after
    )
    reports = {"prefill": first, "decode": second}
    judge(
        "fp16_non_finite_ops",
        "calls (prefill, then one decode step on its state) with an op whose fp16 output holds NaN/Inf",
        sum(r.first_non_finite is not None for r in reports.values()),
    )
    counted = {
        (w.name, w.kind)
        for r in reports.values()
        for w in r.constant_warnings
        if w.kind in UNREPRESENTABLE_KINDS
    }
    judge(
        "fp16_unrepresentable_constants", "constants fp16 turns into Inf or 0 (both functions)", len(counted)
    )
    details["hazards_text"] = "\n\n".join(f"{name}:\n{r.render(top=8)}" for name, r in reports.items())
