"""Placement and tokens per second of a causal LM package ``check`` judges: timed through the package's own
functions as the step checks drive them, here with a fake program and clock, and a fake in-spec Mac."""

from types import SimpleNamespace

import pytest
import torch

from verification.checks import Check
from verification.release.check import decoder_device

VOCAB = 7


class FakeProgram:
    """Greedy next token = (last token + 1) mod VOCAB; every call advances the fake clock."""

    def __init__(self, clock, prefill_seconds, step_seconds):
        self.clock, self.prefill_seconds, self.step_seconds = clock, prefill_seconds, step_seconds
        self.calls: list = []

    def reset_cache(self):
        self.calls.append("reset")

    def _logits(self, token, rows):
        logits = torch.zeros(1, rows, VOCAB)
        logits[0, -1, (token + 1) % VOCAB] = 1.0
        return logits

    def prefill(self, ids):
        self.clock.now += self.prefill_seconds
        self.calls.append(("prefill", ids.shape[1]))
        return self._logits(int(ids[0, -1]), ids.shape[1])

    def decode_step(self, ids, position):
        self.clock.now += self.step_seconds
        self.calls.append(("decode", int(ids[0, 0]), position))
        return self._logits(int(ids[0, 0]), 1)[:, -1]


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_tokens_per_second_are_medians_of_prefill_and_greedy_decode_rounds():
    clock = FakeClock()
    program = FakeProgram(clock, prefill_seconds=0.5, step_seconds=0.1)
    prompt = torch.tensor([[1, 2, 3, 4]])
    timing = decoder_device.time_tokens(program, prompt, 3, clock=clock)
    assert timing["prefill_tokens_per_second"] == pytest.approx(4 / 0.5)
    assert timing["decode_tokens_per_second"] == pytest.approx(3 / 0.3)
    rounds = decoder_device.ROUNDS + decoder_device.WARMUP_ROUNDS
    assert program.calls.count("reset") == rounds  # every round from an empty cache
    # greedy: each step feeds the token the previous call chose, at the next slot
    first = program.calls.index(("prefill", 4))
    assert program.calls[first + 1 : first + 4] == [("decode", 5, 4), ("decode", 6, 5), ("decode", 0, 6)]


def _mac(monkeypatch):
    from verification.ondevice import device as device_module

    monkeypatch.setattr(device_module, "compute_plan_gate", lambda device: None)
    monkeypatch.setattr(device_module, "measurement_gate", lambda device: None)
    monkeypatch.setattr(decoder_device, "not_measured_reason", lambda backend: None)


def _judge(checks):
    def judge(name, metric, value, reason=None):
        checks[name] = {"name": name, "value": value, "reason": reason}
        return checks[name]

    return judge


def test_on_a_mac_the_share_is_the_worst_function_and_both_rates_are_measured(monkeypatch):
    _mac(monkeypatch)
    planned = SimpleNamespace(prefill="main", decode="main")  # Apple's one-function recipe
    options = SimpleNamespace(package="p.mlpackage", new_tokens=4)
    asked = {}

    def placement(path, device, functions):
        asked["functions"] = functions
        share = Check("ane_op_share", "share", 0.93, 1.0, passed=False, measured=True)
        return {f: SimpleNamespace(checks=[share], reason=None, to_dict=lambda: {}) for f in functions}

    clock = FakeClock()
    checks, details = {}, {}
    decoder_device.device_checks(
        planned,
        options,
        "coreml",
        torch.tensor([[1, 2]]),
        _judge(checks),
        details,
        program=lambda: FakeProgram(clock, 0.2, 0.05),
        device=SimpleNamespace(),
        placement=placement,
        clock=clock,
    )
    assert asked["functions"] == ("main",)
    assert checks["ane_op_share"]["value"] == 0.93 and checks["ane_op_share"]["reason"] is None
    assert checks["prefill_tokens_per_second"]["value"] == pytest.approx(10.0)
    assert checks["decode_tokens_per_second"]["value"] == pytest.approx(20.0)
    assert details["tokens_per_second"]["measured"] is True


def test_off_a_mac_nothing_is_timed_and_each_check_says_why():
    built = []
    checks, details = {}, {}
    decoder_device.device_checks(
        SimpleNamespace(prefill="prefill", decode="decode"),
        SimpleNamespace(package="p.mlpackage", new_tokens=4),
        "mil",
        torch.tensor([[1]]),
        _judge(checks),
        details,
        program=lambda: built.append(1),
    )
    assert not built
    assert all(checks[n]["value"] is None and checks[n]["reason"] for n in checks), checks
    assert set(checks) == {"ane_op_share", "prefill_tokens_per_second", "decode_tokens_per_second"}
    assert details["tokens_per_second"]["measured"] is False
