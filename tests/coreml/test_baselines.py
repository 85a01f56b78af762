"""The plain transformers models convert too (the speed-up comparison needs their Core ML programs), and
their fp32 and fp16 programs compute what transformers computes."""

import pytest
import torch
import transformers
from tiny_models import FAMILIES, hf_model, input_dict, model_inputs, output_names

from verification import thresholds
from verification.coreml import BaselineForConversion, convert, predict
from verification.metrics import assert_parity
from verification.mil.hazards import find_hazards

pytestmark = pytest.mark.coreml

# transformers 4.46 to 4.57 build BERT's and RoBERTa's additive mask as (1 - mask) * finfo(float32).min:
# an fp16 program holds that constant as -inf, and 0 * -inf is NaN, so their fp16 baselines are NaN
# everywhere, padding or not (transformers 5 masks with a select instead). The speed-up still times them.
FP16_BASELINE_GOES_NAN = {
    family: int(transformers.__version__.split(".")[0]) < 5 and family in ("bert", "roberta")
    for family in FAMILIES
}


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("head", ["Model", "ForSequenceClassification"])
@pytest.mark.parametrize("exporter", ["trace", "export"])
def test_baseline_converts_and_its_fp32_program_matches_transformers(family, head, exporter):
    baseline = BaselineForConversion(hf_model(family, head))
    inputs = model_inputs(family, head)
    mlmodel = convert(baseline, inputs, precision="fp32", exporter=exporter)
    with torch.no_grad():
        expected = baseline(*[x.long() for x in inputs])
    outputs = predict(mlmodel, input_dict(mlmodel, inputs), backend="mil")
    for name, reference in zip(output_names(mlmodel), expected, strict=True):
        assert_parity(
            reference,
            outputs[name],
            min_psnr_db=thresholds.COREML_FP32_PSNR_DB,
            name=f"baseline {family} {head} {name!r} [fp32 program, {exporter}]",
        )


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("head", ["Model", "ForSequenceClassification"])
@pytest.mark.parametrize("exporter", ["trace", "export"])
def test_baseline_fp16_program_stays_above_its_floor(family, head, exporter):
    """The baselines' fp16 programs are what the speed-up is measured against: they must compute the same
    thing too (and not go NaN on padded rows: transformers' masks use finfo.min)."""
    baseline = BaselineForConversion(hf_model(family, head))
    inputs = model_inputs(family, head)
    mlmodel = convert(baseline, inputs, precision="fp16", exporter=exporter)
    with torch.no_grad():
        expected = baseline(*[x.long() for x in inputs])
    if FP16_BASELINE_GOES_NAN[family]:
        report = find_hazards(mlmodel, input_dict(mlmodel, inputs))
        first = report.first_non_finite
        assert first is not None and first.op_type == "mul" and first.nan_count > 0, report.render()
        outputs = predict(mlmodel, input_dict(mlmodel, inputs), backend="mil")
        assert all(torch.isnan(torch.as_tensor(outputs[name])).all() for name in output_names(mlmodel))
        return
    for mode, floor in (
        ("fp16_storage", thresholds.COREML_FP16_RANDOM_PSNR_DB),
        ("fp16_native", thresholds.COREML_FP16_NATIVE_RANDOM_PSNR_DB),
    ):
        outputs = predict(mlmodel, input_dict(mlmodel, inputs), backend="mil", mode=mode)
        for name, reference in zip(output_names(mlmodel), expected, strict=True):
            result = assert_parity(
                reference,
                outputs[name],
                min_psnr_db=floor,
                name=f"baseline {family} {head} {name!r} [fp16 program, {exporter}, MIL {mode}]",
            )
            print(f"baseline {family} {head} {name!r} [fp16, {exporter}, {mode}]: {result.psnr_db:.1f} dB")


def test_baseline_wrapper_rejects_other_families():
    with pytest.raises(
        ValueError, match=r"expected a transformers DistilBERT, BERT, RoBERTa or XLM-RoBERTa model, got Lin"
    ):
        BaselineForConversion(torch.nn.Linear(2, 2))
