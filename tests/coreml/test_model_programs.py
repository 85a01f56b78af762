"""End-to-end parity: every ane_models family and head, the reference encoder-decoder Transformer and
query-chunked models (tiny_models.ALL_MODELS), torch vs its converted ML Program run by the MIL reference
executor, traced and exported, fp32 and fp16 (both fp16 executor modes). Core ML itself runs the same
programs on macOS: test_coreml_runtime.py."""

import pytest
from program_parity import EXPORTERS, assert_program_matches_torch, fp16_floor
from tiny_models import ALL_MODELS, EXTRA_MODELS, FAMILIES

from verification import thresholds

pytestmark = pytest.mark.coreml


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("model_id", ALL_MODELS)
def test_fp32_program_matches_torch(converted, model_id, exporter):
    assert_program_matches_torch(
        converted(model_id, "fp32", exporter),
        model_id,
        thresholds.COREML_FP32_PSNR_DB,
        label=f"fp32 program, {exporter}, MIL executor",
    )


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("model_id", ALL_MODELS)
def test_fp16_program_stays_above_its_floor_in_both_executor_modes(converted, model_id, exporter):
    mlmodel = converted(model_id, "fp16", exporter)
    for mode in ("fp16_storage", "fp16_native"):
        assert_program_matches_torch(
            mlmodel,
            model_id,
            fp16_floor(model_id, mode),
            label=f"fp16 program, {exporter}, MIL executor {mode}",
            mode=mode,
        )


def test_the_extra_models_are_what_they_claim():
    """The query-chunked models really chunk (a chunk size at or above the length would not)."""
    from tiny_models import CHUNK, REFERENCE, SEQ, model_under_test

    for model_id in EXTRA_MODELS:
        model, _ = model_under_test(model_id)
        chunks = {m.query_chunk_size for m in model.modules() if hasattr(m, "query_chunk_size")}
        if "query_chunked" in model_id:
            assert chunks == {CHUNK}, f"{model_id}: query_chunk_size {chunks}"
            assert CHUNK < min(SEQ, REFERENCE["source"], REFERENCE["target"])
        else:
            assert chunks <= {None}, f"{model_id}: query_chunk_size {chunks}"


def test_fp16_programs_carry_no_unrepresentable_constants(converted):
    """No -inf, no overflow, no eps that rounds to 0 or to an inexact subnormal: the fp16-safe eps 2**-23
    is a subnormal fp16 holds exactly, so the finder has nothing to say about it."""
    from verification.mil import load_program
    from verification.mil.hazards import scan_constants

    for model_id in [f"{family}-Model" for family in FAMILIES] + list(EXTRA_MODELS):
        program = load_program(converted(model_id, "fp16"))
        warnings = scan_constants(program, "fp16")
        assert warnings == [], f"{model_id}: {warnings}"
