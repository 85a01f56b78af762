"""Every advertised model passes its own readiness defaults: each ane_models family and head, and the
reference encoder-decoder, converted tiny (the copy and off-ANE counts do not depend on the width), traced
and exported, judged by ``readiness_checks`` at the default thresholds of its head."""

import pytest
from program_parity import EXPORTERS
from tiny_models import ALL_MODELS, REFERENCE, model_under_test

from verification import thresholds
from verification.readiness import analyze, describe_finding, findings_by_check, readiness_checks
from verification.release import gate_config

pytestmark = pytest.mark.coreml


def _architecture(model_id: str) -> str | None:
    model, _ = model_under_test(model_id)
    config = getattr(model, "ane_config", None)
    return config.architecture if config is not None else None


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("model_id", ALL_MODELS)
def test_every_model_passes_the_readiness_defaults(converted, model_id, exporter):
    # the reference's layers are its attention blocks: an encoder layer has one, a decoder layer two
    layers = REFERENCE["layers"] * 3 if model_id.startswith("reference") else None
    report = analyze(converted(model_id, "fp16", exporter), label=model_id, num_layers=layers)
    architecture = _architecture(model_id)
    checks = readiness_checks(report, architecture=architecture)
    found = findings_by_check(report)
    print(  # pytest -s: the figures docs/coreml.md quotes
        f"{model_id} ({exporter}): copies per layer {report.copies_per_layer}, outside the layers "
        f"{report.copies_outside_layers}, off the ANE {len(report.off_ane_ops)}, layer norms fused "
        f"{report.layer_norms_fused} of {report.layer_norms}"
    )
    failed = [
        f"{c.describe()}\n    " + "\n    ".join(describe_finding(f) for f in found.get(c.name, []))
        for c in checks
        if c.passed is not True
    ]
    assert not failed, f"{model_id} ({exporter}, {architecture}): readiness at the defaults:\n" + "\n".join(
        failed
    )
    # what the rule allows outside the layers is what the program has: a switch in, and one out where
    # the head's output layout needs it
    assert report.copies_outside_layers == thresholds.readiness_copies_outside_layers_max(architecture), (
        f"{model_id} ({exporter}): copies outside the layers "
        f"{[describe_finding(f) for f in found['readiness_copies_outside_layers']]}"
    )


@pytest.mark.parametrize(
    ("architecture", "allowed"),
    [
        (None, 1),
        ("DistilBertModel", 1),
        ("BertForSequenceClassification", 1),
        ("RobertaForQuestionAnswering", 1),
        ("BertForMaskedLM", 2),
        ("DistilBertForTokenClassification", 2),
        ("RobertaForMultipleChoice", 2),
    ],
)
def test_the_gate_judges_copies_outside_the_layers_by_head(architecture, allowed):
    assert thresholds.readiness_copies_outside_layers_max(architecture) == allowed
    assert (
        gate_config.default_threshold("readiness_copies_outside_layers", architecture=architecture) == allowed
    )
