"""The program cache converts a graph once, and never serves a program for anything that differs: one
weight, one graph constant, one option or one version changed is a miss."""

import numpy as np
import pytest
import torch

from verification.coreml import convert, predict, program_cache


class Scaled(torch.nn.Module):
    def __init__(self, offset: float = 0.5):
        super().__init__()
        self.proj = torch.nn.Linear(6, 4)
        self.offset = offset

    def forward(self, x):
        return self.proj(x) * 2.0 + torch.full((1, 4), self.offset)  # a tensor constant of the trace


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(program_cache.ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def _model(seed: int = 0, **options) -> Scaled:
    torch.manual_seed(seed)
    return Scaled(**options).eval()


def _kinds(since):
    return [kind for kind, _ in program_cache.EVENTS[since:]]


def _outputs(mlmodel, x):
    return predict(mlmodel, {"x": x.numpy()}, backend="mil")


X = torch.randn(1, 6)


def test_the_second_conversion_is_a_hit_with_the_same_program(cache):
    since = len(program_cache.EVENTS)
    first = convert(_model(), (X,), precision="fp32")
    second = convert(_model(), (X,), precision="fp32")
    assert _kinds(since) == ["miss", "hit"]
    assert len([p for p in cache.iterdir() if not p.name.startswith(".")]) == 1
    a, b = _outputs(first, X), _outputs(second, X)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=f"output {name}: the hit differs")


@pytest.mark.parametrize(
    "change",
    ["one weight", "a graph constant", "precision", "deployment target", "input shape", "a version"],
)
def test_anything_that_differs_is_a_miss(cache, monkeypatch, change):
    import coremltools as ct

    convert(_model(), (X,), precision="fp32")
    model, inputs, options = _model(), (X,), {"precision": "fp32"}
    if change == "one weight":
        with torch.no_grad():
            model.proj.weight[1, 2] += 1e-3
    elif change == "a graph constant":
        model = _model(offset=0.25)
    elif change == "precision":
        options["precision"] = "fp16"
    elif change == "deployment target":
        options["minimum_deployment_target"] = ct.target.iOS18
    elif change == "input shape":
        inputs = (torch.randn(2, 6),)
    else:
        versions = program_cache._versions()
        monkeypatch.setattr(program_cache, "_versions", lambda: {**versions, "coremltools": "0.0"})
    since = len(program_cache.EVENTS)
    converted = convert(model, inputs, **options)
    assert _kinds(since) == ["miss"], f"{change}: served from the cache"
    want = model(*inputs).detach().numpy()
    got = next(iter(predict(converted, {"x": inputs[0].numpy()}, backend="mil").values()))
    np.testing.assert_allclose(got, want, rtol=1e-2, atol=1e-2, err_msg=f"{change}: wrong program")


def test_off_writes_nothing_and_an_incomplete_entry_is_a_miss(tmp_path, monkeypatch):
    monkeypatch.setenv(program_cache.ENV, "off")
    since = len(program_cache.EVENTS)
    convert(_model(), (X,), precision="fp32")
    assert _kinds(since) == [] and program_cache.cache_dir() is None
    root = tmp_path / "cache"
    monkeypatch.setenv(program_cache.ENV, str(root))
    convert(_model(), (X,), precision="fp32")
    (entry,) = [p for p in root.iterdir() if not p.name.startswith(".")]
    (entry / program_cache.PACKAGE / "Manifest.json").unlink()  # a package cut short
    since = len(program_cache.EVENTS)
    convert(_model(), (X,), precision="fp32")
    assert _kinds(since) == ["miss"]


def test_the_cache_keeps_within_its_size(cache, monkeypatch):
    monkeypatch.setenv(program_cache.ENV_MAX_MB, "0.000001")  # room for the newest entry only
    convert(_model(0), (X,), precision="fp32")
    convert(_model(1), (X,), precision="fp32")
    assert len([p for p in cache.iterdir() if not p.name.startswith(".")]) == 1


@pytest.mark.parametrize("value", ["off", "OFF", "0"])
def test_the_cache_turned_off_is_not_taken_for_a_directory(value, tmp_path, monkeypatch):
    """``ANE_VERIFY_CACHE=off`` once made the dequantized SmolLM2 land in ./off (and be committed)."""
    from verification import checkpoints

    monkeypatch.setenv(program_cache.ENV, value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert program_cache.cache_dir() is None
    assert checkpoints.cache_root() == tmp_path / "xdg" / "ane-verify"
    monkeypatch.setenv(program_cache.ENV, str(tmp_path / "mine"))
    assert checkpoints.cache_root() == tmp_path / "mine"
