"""fp16's range boundaries, pinned to the values IEEE round-to-nearest-even gives (written out here, not
taken from numpy), in the executor's three modes and in the hazard finder.

- Top: 65504 is the largest fp16 value and the next step would be 65536 (spacing 32 there), so halfway,
  65520, is where rounding turns to inf: 65519.99 rounds to 65504, 65520 (a tie, to the even 65536) and
  above are inf.
- Bottom: the smallest subnormal is 2**-24; 2**-25 is halfway to 0 and ties to the even 0; just above it
  rounds up to 2**-24; 1.5 and 2.5 units of 2**-24 tie to the even 2 units, 2**-23.
"""

from __future__ import annotations

import numpy as np
import pytest
from coremltools.converters.mil.mil import Builder as mb
from coremltools.converters.mil.mil import types
from mil_testing import run_one_op

from verification.mil import MILExecutor, hazards
from verification.mil.hazards import find_hazards, fp16_rounding, scan_constants

UNIT = 2.0**-24  # the smallest fp16 subnormal
INF = np.inf
# (fp32 value, what fp16 storage makes of it)
BOUNDARIES = [
    (65504.0, 65504.0),
    (65519.99, 65504.0),
    (65520.0, INF),
    (65535.99, INF),
    (65536.0, INF),
    (-65519.99, -65504.0),
    (-65520.0, -INF),
    (UNIT, UNIT),
    (2.0**-25, 0.0),
    (2.0**-25 * (1 + 2.0**-10), UNIT),
    (-(2.0**-25), -0.0),
    (1.5 * UNIT, 2 * UNIT),
    (2.5 * UNIT, 2 * UNIT),
    (3.5 * UNIT, 4 * UNIT),
    (2.0**-23, 2.0**-23),
    (2.0**-26, 0.0),
    (2.0**-14, 2.0**-14),
]
VALUES = np.array([v for v, _ in BOUNDARIES], np.float32)
STORED = np.array([s for _, s in BOUNDARIES], np.float64)


def assert_same_values(expected, got, what):
    got = np.asarray(got).astype(np.float64)
    same = (expected == got) | (np.isnan(expected) & np.isnan(got))
    same &= np.signbit(expected) == np.signbit(got)
    cases = zip(VALUES, expected, got, same, strict=True)
    bad = [f"{v!r} -> {g!r}, expected {e!r}" for v, e, g, ok in cases if not ok]
    assert not bad, f"{what}: " + "; ".join(bad)


@pytest.mark.parametrize("mode", ["fp16_storage", "fp16_native"])
def test_cast_to_fp16_rounds_at_both_ends_of_the_range(mode):
    (got,) = run_one_op("cast", {"x": VALUES}, {"dtype": "fp16"}, mode=mode)
    assert got.dtype == np.float16, got.dtype
    assert_same_values(STORED, got, f"cast to fp16 ({mode})")


def test_the_fp32_mode_ignores_fp16_casts_at_the_boundaries():
    (got,) = run_one_op("cast", {"x": VALUES}, {"dtype": "fp16"}, mode="fp32")
    assert_same_values(VALUES.astype(np.float64), got, "cast to fp16 (fp32 mode: no rounding)")


def test_fp16_inputs_are_stored_rounded_at_both_ends_of_the_range():
    """An fp32 array given for an fp16 input is stored as fp16 stores it (identity op: no arithmetic)."""
    (got,) = run_one_op("identity", {"x": VALUES.astype(np.float16)}, {}, mode="fp16_storage")
    assert_same_values(STORED, got, "fp16 input")


def sums_and_products():
    """fp16 inputs whose exact sums and products fall on the boundaries (every input is exact in fp16)."""
    x = np.array([65504, 65504, 65504, 65504, -65504], np.float16)
    y = np.array([8, 15.875, 16, 32, -16], np.float16)  # 65512, 65519.875, 65520, 65536, -65520
    sums = np.array([65504, 65504, INF, INF, -INF])
    a = np.array([UNIT, UNIT, 3 * UNIT, UNIT, 5 * UNIT, UNIT], np.float16)
    b = np.array([0.5, 0.75, 0.5, 0.25, 0.5, 0.5 + 2.0**-11], np.float16)  # 0.5 + 1 ulp: just past the tie
    products = np.array([0, UNIT, 2 * UNIT, 0, 2 * UNIT, UNIT])
    return x, y, sums, a, b, products


@pytest.mark.parametrize("mode", ["fp16_storage", "fp16_native"])
def test_an_op_output_declared_fp16_rounds_at_both_ends_of_the_range(mode):
    x, y, sums, a, b, products = sums_and_products()
    (got,) = run_one_op("add", {"x": x, "y": y}, {}, mode=mode)
    assert np.array_equal(got.astype(np.float64), sums), f"add ({mode}): {got} expected {sums}"
    (got,) = run_one_op("mul", {"x": a, "y": b}, {}, mode=mode)
    assert np.array_equal(got.astype(np.float64), products), f"mul ({mode}): {got} expected {products}"


def test_the_fp32_mode_keeps_the_exact_sums_and_products():
    x, y, _, a, b, _ = sums_and_products()
    (got,) = run_one_op("add", {"x": x, "y": y}, {}, mode="fp32")
    assert np.array_equal(got, x.astype(np.float32) + y.astype(np.float32)), got
    (got,) = run_one_op("mul", {"x": a, "y": b}, {}, mode="fp32")
    assert np.array_equal(got, a.astype(np.float32) * b.astype(np.float32)), got


# ---------------------------------------------------------------- the hazard finder at the boundaries


def test_fp16_rounding_classifies_each_boundary_value():
    rounding = fp16_rounding(VALUES)
    overflow = [float(v) for v in VALUES[rounding["overflow"]]]
    underflow = [float(v) for v in VALUES[rounding["underflow"]]]
    assert overflow == [65520.0, 65535.98828125, 65536.0, -65520.0], overflow  # 65535.99 as fp32
    assert underflow == [2.0**-25, -(2.0**-25), 2.0**-26], underflow
    inexact = [float(v) / UNIT for v in VALUES[rounding["inexact_subnormal"]]]
    # 2**-25 (1 + 2**-10) -> 1 unit, 1.5 -> 2, 2.5 -> 2, 3.5 -> 4: errors of 14 to 100% of the value;
    # 1 unit and 2**-23 (2 units) are exact, 2**-14 is normal
    assert inexact == pytest.approx([0.5 * (1 + 2.0**-10), 1.5, 2.5, 3.5]), inexact


def test_fp16_rounding_block_by_block_classifies_as_in_one_piece(monkeypatch):
    # a weight-shaped array with every boundary value, blocks that split it mid-row (7 does not divide it)
    grid = np.resize(VALUES, (13, len(VALUES) + 3))
    whole = fp16_rounding(grid)
    monkeypatch.setattr(hazards, "ROUNDING_BLOCK", 7)
    blocks = fp16_rounding(grid)
    for kind, mask in whole.items():
        assert mask.shape == grid.shape and blocks[kind].shape == grid.shape, kind
        assert np.array_equal(mask, blocks[kind]), f"{kind}: {int((mask != blocks[kind]).sum())} differ"
        assert mask.any(), f"{kind}: the grid holds no such value, the comparison proves nothing"


@pytest.mark.parametrize("mode", ["fp16_storage", "fp16_native"])
def test_the_finder_names_an_add_that_reaches_65520_and_passes_one_that_stays_below(mode):
    @mb.program(input_specs=[mb.TensorSpec(shape=(4,), dtype=types.fp16)])
    def program(x):
        return mb.add(x=x, y=np.array([8, 15.875, 16, 0], np.float16), name="near_the_top")

    below = find_hazards(program, {"x": np.array([65504, 65504, 0, 1], np.float16)}, fp16_mode=mode)
    assert below.first_non_finite is None, below.render()
    at = find_hazards(program, {"x": np.array([65504, 65504, 65504, 1], np.float16)}, fp16_mode=mode)
    first = at.first_non_finite
    assert first is not None and first.name == "near_the_top", at.render()
    assert (first.inf_count, first.size, first.reference_is_finite) == (1, 4, True), at.render()


def constant_program(values, dtype=np.float32):
    """One ``mul`` per constant, each constant its own const op of ``dtype``."""
    mil_dtype = types.fp16 if dtype == np.float16 else types.fp32

    @mb.program(input_specs=[mb.TensorSpec(shape=(1,), dtype=mil_dtype)])
    def program(x):
        out = x
        for i, value in enumerate(values):
            out = mb.mul(x=out, y=np.array([value], dtype), name=f"uses_{i}")
        return out

    return program


def warned(program, label="fp32 program"):
    kinds = {}
    for warning in scan_constants(program, label):
        (use,) = warning.used_by
        kinds[int(use.split("'uses_")[1].split("'")[0])] = warning.kind
    return kinds


def test_scan_constants_warns_exactly_where_fp16_rounding_changes_a_value():
    kinds = warned(constant_program(VALUES))
    expected = {2: "overflow", 3: "overflow", 4: "overflow", 6: "overflow"}
    expected |= {8: "underflow", 10: "underflow", 15: "underflow"}
    expected |= {9: "subnormal", 11: "subnormal", 12: "subnormal", 13: "subnormal"}
    assert kinds == expected, {i: (float(VALUES[i]), k) for i, k in kinds.items()}


def test_the_fp16_safe_eps_is_exact_and_not_warned_about_but_1e_7_is():
    """2**-23 (the eps ane_models.optimize raises smaller ones to) is 2 units of the smallest subnormal:
    fp16 holds it exactly. 1e-7 becomes the same 2**-23, 19% off: that is a warning."""
    assert warned(constant_program([2.0**-23, 1e-7])) == {1: "subnormal"}
    assert warned(constant_program([2.0**-23], np.float16), "fp16 program") == {}
    # in an fp16 program, 2**-24 is what coremltools leaves of a constant that rounded to 0 (eps 1e-12)
    assert warned(constant_program([UNIT], np.float16), "fp16 program") == {0: "subnormal"}


@pytest.mark.parametrize("epsilon", [2.0**-23, UNIT])
@pytest.mark.parametrize("mode", ["fp16_storage", "fp16_native"])
def test_the_eps_keeps_a_constant_row_finite_in_fp16(mode, epsilon):
    """What the eps is there for: a constant row has variance 0, and rsqrt(0 + eps) = 2896 (2**-23) or
    4096 (2**-24), both within fp16's range; the normalized row is (close to) 0, not NaN: torch's fused
    layer norm leaves its mean's fp32 rounding (~1e-7) times that factor."""

    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 8), dtype=types.fp16)])
    def program(x):
        return mb.layer_norm(x=x, axes=[1], epsilon=np.float16(epsilon), name="norm")

    x = np.stack([np.full(8, 3.25), np.linspace(-1, 1, 8)]).astype(np.float16)
    (out,) = MILExecutor(program, mode=mode).run({"x": x}).values()
    assert np.isfinite(out).all() and np.abs(out[0]).max() < 2e-3, out
