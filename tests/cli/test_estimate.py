"""The estimate said before a run: close to the runs it was fitted to, a warning only for big runs."""

import pytest

from verification.release import estimate


def test_the_estimate_matches_the_runs_it_was_fitted_to():
    """docs/run-estimates.md: DistilBERT-base at the defaults (2.65 GB peak, ~27 s on a quiet machine)
    and at --seq-len 512 --batch-size 8 (12 min, 9.9 GB)."""
    sizes = estimate.EMBEDDED_SIZES["distilbert"]
    default = estimate.estimate("distilbert", sizes, 128, 1)
    big = estimate.estimate("distilbert", sizes, 512, 8)
    assert default.bytes == pytest.approx(2.65e9, rel=0.15) and 20 < default.seconds < 45
    assert big.bytes == pytest.approx(9.9e9, rel=0.15) and big.seconds == pytest.approx(720, rel=0.15)
    assert not default.large and big.large
    assert "min" in big.describe() and "GB" in big.describe()


@pytest.mark.parametrize("family", sorted(estimate.EMBEDDED_SIZES))
def test_no_family_warns_at_the_defaults_and_every_one_grows_with_the_sizes(family):
    sizes = estimate.EMBEDDED_SIZES[family]
    default = estimate.estimate(family, sizes, 128, 1)
    assert not default.large, default.describe()
    longer, wider = estimate.estimate(family, sizes, 256, 1), estimate.estimate(family, sizes, 128, 2)
    assert longer.seconds > default.seconds and longer.bytes > default.bytes
    assert wider.seconds > default.seconds and wider.bytes > default.bytes


def test_the_embedded_sizes_are_transformers_defaults():
    import transformers

    for family, config in [
        ("distilbert", transformers.DistilBertConfig()),
        ("bert", transformers.BertConfig()),
        ("roberta", transformers.RobertaConfig(vocab_size=50265)),
    ]:
        expected = config.to_dict()
        for key, value in estimate.EMBEDDED_SIZES[family].items():
            assert expected[key] == value, (family, key)
