"""verification/decoders/forked_conversion.py: a decoder's two functions converted in forked children,
the same package as converted one after the other; failures and deaths of a child said, not hidden."""

import os
import time

import numpy as np
import pytest
import torch
from test_decoder_programs import CAPACITY, PREFILL, tiny_llama
from test_function_merge import weight_bytes

import ane_models
from verification.decoders import forked_conversion
from verification.decoders.conversion import convert_decoder
from verification.decoders.program_lm import ProgramCausalLM

pytestmark = pytest.mark.skipif(not forked_conversion.can_fork(), reason="forked conversion is Linux-only")


def test_jobs_run_in_their_own_processes_and_the_trees_memory_is_counted_once():
    """The children share this process's pages (256 MB of ballast among them): the tree's peak is about
    this process's proportional set size before (pages it shares with other programs count in part), not
    three times it (summed RSS), nor the children's alone."""
    parent = os.getpid()
    ballast = np.ones(256 * 2**20 // 8)

    def job(value):
        def run():
            time.sleep(4 * forked_conversion.SAMPLE_SECONDS)  # long enough to be sampled
            return {"value": value, "pid": os.getpid(), "first": float(ballast[0])}

        return run

    before = forked_conversion._pss_kb(parent) * 1024 / 1e6
    results, tree_peak_mb = forked_conversion.run_forked({"a": job(1), "b": job(2)})
    assert {name: r["value"] for name, r in results.items()} == {"a": 1, "b": 2}
    assert len({results["a"]["pid"], results["b"]["pid"], parent}) == 3, results
    assert 0.9 * before < tree_peak_mb < 1.5 * before, f"tree {tree_peak_mb:.0f} MB, this one {before:.0f}"


def test_a_job_that_raises_is_said_with_its_error():
    def fails():
        raise ValueError("no kernel for op 'frobnicate'")

    with pytest.raises(forked_conversion.ChildFailed, match=r"converting bad .*ValueError: no kernel for op"):
        forked_conversion.run_forked({"good": lambda: {}, "bad": fails})


def test_a_child_that_dies_is_said_with_its_exit_code():
    with pytest.raises(forked_conversion.ChildFailed, match=r"converting dies .*exit code 9"):
        forked_conversion.run_forked({"dies": lambda: os._exit(9)})


@pytest.mark.parametrize("cache, precision", [("state", "fp16"), ("io", "fp32")])
def test_forked_and_sequential_conversion_make_the_same_package(tmp_path, cache, precision, monkeypatch):
    monkeypatch.setenv("ANE_VERIFY_CACHE", "off")  # both convert: neither is served by the other
    lm = ane_models.optimize(tiny_llama(seed=8), cache_capacity=CAPACITY, prefill_length=PREFILL)
    made = {
        forked: convert_decoder(
            lm, tmp_path / f"{forked}.mlpackage", cache=cache, precision=precision, parallel=forked
        )
        for forked in (True, False)
    }
    assert made[True].processes["forked"] and made[True].processes["tree_peak_mb"] > 0
    assert made[False].processes == {"forked": False, "tree_peak_mb": None}
    assert weight_bytes(made[True].path) == weight_bytes(made[False].path)
    prompt = torch.randint(0, 96, (1, 5), generator=torch.Generator().manual_seed(2))
    logits = {
        forked: ProgramCausalLM(c.path, lm.decoder_config, backend="mil").prefill(prompt)
        for forked, c in made.items()
    }
    assert np.array_equal(np.asarray(logits[True]), np.asarray(logits[False])), "the programs compute apart"
    assert lm.model.kv_cache.k_cache.abs().sum() == 0, "conversion left the model's cache written"
