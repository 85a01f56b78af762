"""Every registered layer pair: fp32 parity (>= 100 dB) and fp16 parity on inputs of magnitude 0.1..10."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verification import thresholds
from verification.equivalence.pairs import REGISTRY
from verification.equivalence.runner import check_pair

PAIRS = sorted(REGISTRY)


@pytest.mark.parametrize("pair_name", PAIRS)
@given(data=st.data())
def test_fp32_parity(pair_name, data):
    pair = REGISTRY[pair_name]
    check_pair(pair, data.draw(pair.cases(), label="case"), "fp32")


@pytest.mark.parametrize("pair_name", PAIRS)
@given(data=st.data())
def test_fp16_parity(pair_name, data):
    pair = REGISTRY[pair_name]
    case = data.draw(pair.cases(scales=thresholds.LAYER_FP16_INPUT_SCALES), label="case")
    check_pair(pair, case, "fp16")


def test_registry_covers_every_layer():
    import ane_layers

    layers = {name for name in ane_layers.__all__ if name.endswith("ANE")}
    paired = {REGISTRY[p].ane_layer.split("(")[0].split(" ")[0] for p in PAIRS}
    assert layers <= paired, f"layers without a registered pair: {sorted(layers - paired)}"
