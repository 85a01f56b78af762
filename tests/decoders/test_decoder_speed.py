"""Tokens per second of a converted decoder: the Core ML timing loop against a fake model that returns
recorded logits on a fake clock (any platform), the checks it becomes in the report, the reason off a Mac,
and the real thing on a Mac (marked ``macos``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from verification.decoders.speed import measure_tokens_per_second, not_measured_reason
from verification.release import decoder_checks, gate_config
from verification.release.context import judged_check
from verification.release.decoder_pipeline import DecoderOptions, _Ctx

VOCAB, PREFILL, CONTEXT = 11, 8, 24


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class FakeFunction:
    """One function of the package as ``MLModel(path, function_name=...)`` gives it: ``make_state()`` and
    ``predict(inputs, state=...)``, returning recorded logits (greedy token = position + 1, mod vocab) and
    advancing the clock by ``seconds``."""

    def __init__(self, name, clock, seconds, log):
        self.name, self.clock, self.seconds, self.log = name, clock, seconds, log

    def make_state(self):
        self.log.append(("make_state", self.name))
        return object()

    def predict(self, inputs, state=None):
        self.log.append((self.name, inputs, state))
        self.clock.now += self.seconds
        n = inputs["input_ids"].shape[1]
        logits = np.zeros((1, n, VOCAB), np.float32)
        for i, position in enumerate(inputs["position_ids"][0]):
            logits[0, i, (int(position) + 1) % VOCAB] = 1.0
        return {"logits": logits}


def _fake(prefill_seconds=0.04, decode_seconds=0.01):
    clock, log, loaded = FakeClock(), [], []

    def load(path, function_name, compute_units):
        loaded.append((function_name, compute_units))
        seconds = prefill_seconds if function_name == "prefill" else decode_seconds
        return FakeFunction(function_name, clock, seconds, log)

    return clock, log, loaded, load


def test_rounds_share_one_state_from_prefill_into_decode_and_feed_the_greedy_token():
    clock, log, loaded, load = _fake()
    prompt = np.array([[3, 1, 4, 1, 5]])
    timing = measure_tokens_per_second(
        "x.mlpackage",
        prompt,
        prefill_length=PREFILL,
        capacity=CONTEXT,
        new_tokens=4,
        load_function=load,
        clock=clock,
        rounds=3,
        warmup_rounds=1,
    )
    assert loaded == [("prefill", "CPU_AND_NE"), ("decode", "CPU_AND_NE")]
    calls = [entry for entry in log if entry[0] in ("prefill", "decode")]
    assert len(calls) == 4 * (1 + 3), [c[0] for c in calls]  # (1 prefill + 3 decode) x (warm-up + 3 rounds)
    first = calls[:4]
    prefill_feed = first[0][1]
    assert prefill_feed["input_ids"].tolist() == [[3, 1, 4, 1, 5, 0, 0, 0]]
    assert prefill_feed["position_ids"].tolist() == [[0, 1, 2, 3, 4, 4, 4, 4]]
    assert prefill_feed["attention_mask"].shape == (1, CONTEXT)
    # decode steps at positions 5, 6, 7, each fed the previous call's argmax (position + 1)
    assert [int(c[1]["position"][0]) for c in first[1:]] == [5, 6, 7]
    assert [int(c[1]["input_ids"][0, 0]) for c in first[1:]] == [5, 6, 7]
    states = {id(c[2]) for c in first}
    assert len(states) == 1 and None not in [c[2] for c in first], "one state per round, into every call"
    assert len({id(c[2]) for c in calls}) == 4, "a fresh state every round"
    # 8 prefill tokens in 0.04 s; 3 decode calls in 0.03 s
    assert timing.prefill_tokens_per_second == pytest.approx(200.0), timing
    assert timing.decode_tokens_per_second == pytest.approx(100.0), timing
    assert (timing.rounds, timing.warmup_rounds, timing.decode_steps, timing.prompt_tokens) == (3, 1, 3, 5)
    assert timing.prefill_seconds == pytest.approx([0.04] * 3) and timing.decode_seconds == pytest.approx(
        [0.03] * 3
    )


def test_a_prompt_longer_than_the_prefill_or_a_run_past_the_cache_is_refused():
    clock, _, _, load = _fake()
    with pytest.raises(ValueError, match="prompt tokens 9 <= prefill length 8"):
        measure_tokens_per_second(
            "x", np.ones((1, 9)), prefill_length=8, capacity=24, new_tokens=2, load_function=load, clock=clock
        )
    with pytest.raises(ValueError, match="capacity 10"):
        measure_tokens_per_second(
            "x", np.ones((1, 8)), prefill_length=8, capacity=10, new_tokens=5, load_function=load, clock=clock
        )


@pytest.mark.parametrize(
    "backend, system, expected",
    [
        ("mil", "Linux", "Core ML runs only on macOS; this run: Linux x86_64, backend mil"),
        ("mil", "Darwin", "timed through Core ML only; this run uses backend mil"),
        ("coreml", "Darwin", None),
    ],
)
def test_not_measured_reason(backend, system, expected):
    reason = not_measured_reason(backend, system=system, machine="x86_64")
    assert reason == expected if expected is None else reason.startswith(expected), reason


def _judge_tokens_per_second(measure, blocked, overrides=None, cache="state"):
    o = DecoderOptions(model="smollm2", cache=cache, prefill_len=PREFILL, context=CONTEXT, new_tokens=4)
    if overrides:
        o.overrides = gate_config.Thresholds(overrides, dict.fromkeys(overrides, "--threshold"))
    checks, details = [], {}

    def judge(name, metric, value, reason=None):
        checks.append(judged_check(name, metric, value, _Ctx(o), reason=reason))
        return checks[-1]

    decoder_checks.tokens_per_second(
        "x.mlpackage", o, torch.tensor([[3, 1, 4]]), judge, details, measure=measure, blocked=blocked
    )
    return {c["name"]: c for c in checks}, details


def _fake_measure(path, prompt, **kwargs):
    clock, _, _, load = _fake()
    return measure_tokens_per_second(path, prompt, load_function=load, clock=clock, **kwargs)


def test_measured_tokens_per_second_are_informational_and_say_so():
    checks, details = _judge_tokens_per_second(_fake_measure, blocked=None)
    for name, value in (("prefill_tokens_per_second", 200.0), ("decode_tokens_per_second", 100.0)):
        check = checks[name]
        assert check["measured"] and check["passed"] and check["value"] == value, check
        assert check["threshold"] == 0 and "no tokens/s floor is published" in check["reason"], check
        assert "informational" in check["metric"], check
    assert details["tokens_per_second"]["measured"] and details["tokens_per_second"]["rounds"] == 3


def test_a_floor_given_with_threshold_gates_them():
    checks, _ = _judge_tokens_per_second(
        _fake_measure, blocked=None, overrides={"decode_tokens_per_second": 150}
    )
    check = checks["decode_tokens_per_second"]
    assert check["passed"] is False and check["threshold_source"] == "--threshold", check
    assert checks["prefill_tokens_per_second"]["passed"], checks["prefill_tokens_per_second"]


def test_off_a_mac_they_are_not_measured_with_the_reason_and_nothing_is_timed():
    def measure(*_a, **_k):
        raise AssertionError("timed off a Mac")

    reason = not_measured_reason("mil", system="Linux", machine="x86_64")
    checks, details = _judge_tokens_per_second(measure, blocked=reason)
    for name in ("prefill_tokens_per_second", "decode_tokens_per_second"):
        assert checks[name]["measured"] is False and checks[name]["passed"] is None, checks[name]
        assert checks[name]["reason"] == reason
    assert details["tokens_per_second"] == {
        "measured": False,
        "reason": reason,
        "floor": decoder_checks.NO_FLOOR,
    }


def test_io_cache_programs_are_not_timed():
    checks, _ = _judge_tokens_per_second(_fake_measure, blocked=None, cache="io")
    assert "--cache io" in checks["decode_tokens_per_second"]["reason"], checks["decode_tokens_per_second"]


@pytest.mark.macos
def test_a_tiny_decoder_on_core_ml_gives_positive_tokens_per_second(tmp_path):
    import transformers

    import ane_models
    from verification.decoders.conversion import convert_decoder

    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=96,
        hidden_size=48,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=3,
        num_key_value_heads=1,
        max_position_embeddings=64,
        attn_implementation="eager",
    )
    lm = ane_models.optimize(
        transformers.LlamaForCausalLM(config).eval(), cache_capacity=CONTEXT, prefill_length=PREFILL
    )
    path = convert_decoder(lm, tmp_path / "tiny.mlpackage", prefill_length=PREFILL).path
    timing = measure_tokens_per_second(
        path, np.arange(1, 6)[None], prefill_length=PREFILL, capacity=CONTEXT, new_tokens=6
    )
    assert timing.prefill_tokens_per_second > 0 and timing.decode_tokens_per_second > 0, timing


def test_the_reports_show_measured_figures_with_why_they_are_not_gated():
    from verification.release.reports.decoder_sections import html_sections, markdown_sections

    _, details = _judge_tokens_per_second(_fake_measure, blocked=None)
    report = {"checks": [], "details": {**details, "decoder": {"step_psnr_db": [70.0]}}}
    expected = "tokens per second: prefill 200.0, decode 100.0 (Core ML CPU_AND_NE, median of 3 rounds"
    markdown, html = "\n".join(markdown_sections(report)), "".join(html_sections(report))
    for text in (markdown, html):
        assert expected in text and "no tokens/s floor is published" in text, text
