"""The estimate calibrated on this machine's earlier runs: the history records what each run measured,
the next estimate of the same kind on the same machine is scaled by it, other machines' and other
kinds' runs are not used, and a cache turned off keeps nothing."""

import json

import pytest

from verification.release import estimate, run_history

DEFAULT = estimate.estimate("distilbert", estimate.EMBEDDED_SIZES["distilbert"], 128, 1)


@pytest.fixture
def history(tmp_path, monkeypatch):
    monkeypatch.setenv("ANE_VERIFY_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / run_history.HISTORY_FILE


def test_without_earlier_runs_the_config_estimate_is_said_as_such(history):
    expected, how = run_history.calibrated("run coreml encoder", DEFAULT)
    assert expected == DEFAULT and "no earlier run" in how


def test_earlier_runs_on_this_machine_scale_the_estimate_by_their_median(history):
    for factor in (2.0, 3.0, 2.5):  # runs that took 2 to 3 times the estimate, at 0.5x its memory
        run_history.record("run coreml encoder", DEFAULT, DEFAULT.seconds * factor, DEFAULT.bytes * 0.5)
    expected, how = run_history.calibrated("run coreml encoder", DEFAULT)
    assert expected.seconds == pytest.approx(DEFAULT.seconds * 2.5, rel=1e-3)
    assert expected.bytes == pytest.approx(DEFAULT.bytes * 0.5, rel=1e-3)
    assert "3 earlier runs" in how and "x2.50" in how and "x0.50" in how, how
    entry = json.loads(history.read_text())[-1]
    assert entry["machine"] == run_history.machine() and entry["kind"] == "run coreml encoder"


def test_only_the_last_runs_of_the_same_kind_and_machine_count(history):
    run_history.record("run coreai encoder", DEFAULT, DEFAULT.seconds * 10, None)  # another kind
    for _ in range(run_history.RECENT + 2):
        run_history.record("run coreml encoder", DEFAULT, DEFAULT.seconds * 4, None)
    for _ in range(run_history.RECENT):
        run_history.record("run coreml encoder", DEFAULT, DEFAULT.seconds * 2, None)
    entries = json.loads(history.read_text())
    other = {**entries[-1], "machine": {"cpu": "another CPU", "cores": 64}, "seconds": 1e6}
    entries += [other] * 3  # the last entries, and a majority of the last RECENT: never used here
    history.write_text(json.dumps(entries))
    expected, how = run_history.calibrated("run coreml encoder", DEFAULT)
    assert expected.seconds == pytest.approx(DEFAULT.seconds * 2, rel=1e-3), how
    assert expected.bytes == DEFAULT.bytes  # no peak recorded: memory as the config says


def test_a_damaged_history_calibrates_nothing_and_is_rewritten(history):
    history.parent.mkdir(parents=True)
    history.write_text("{not json")
    assert run_history.calibrated("run coreml encoder", DEFAULT)[0] == DEFAULT
    run_history.record("run coreml encoder", DEFAULT, 1.0, None)
    assert len(json.loads(history.read_text())) == 1


def test_with_the_cache_off_nothing_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("ANE_VERIFY_CACHE", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    run_history.record("run coreml encoder", DEFAULT, 1.0, None)
    assert not list(tmp_path.rglob(run_history.HISTORY_FILE))


def test_the_warning_is_for_over_five_minutes_or_half_the_memory(monkeypatch):
    monkeypatch.setattr(estimate, "machine_memory_bytes", lambda: 8e9)
    assert not estimate.Estimate(299.0, 3.9e9, 1.0).large
    assert estimate.Estimate(301.0, 1e9, 1.0).large
    assert estimate.Estimate(10.0, 4.1e9, 1.0).large
