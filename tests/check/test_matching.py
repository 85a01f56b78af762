"""The matching rules of ``check`` on declared interfaces alone (nothing converted): what is matched,
and what is refused because it cannot be told for certain."""

import pytest

from verification.release.check.interface import Feature, Flexible, Function
from verification.release.check.map_file import MapFile, MappedOutput, read_map
from verification.release.check.mapping import (
    ENCODER_INPUTS,
    MappingError,
    match_inputs,
    match_outputs,
    role_by_name,
)

IDS = Feature("input_ids", (1, 16), "int32")


def _function(inputs=(IDS,), outputs=()):
    return Function("main", tuple(inputs), tuple(outputs))


@pytest.mark.parametrize(
    "name, role",
    [
        ("inputIds", "input_ids"),
        ("input_input_ids", "input_ids"),
        ("input_attention_mask", "attention_mask"),
        ("causalMask", "causal_mask"),
        ("keyCache", "key_cache"),
        ("segment_ids", "token_type_ids"),
        ("var_12", None),
        ("input", None),
    ],
)
def test_names_real_packages_use(name, role):
    assert role_by_name(name) == role


def test_a_layout_that_cannot_be_told_is_refused_and_a_map_settles_it():
    """S == C: (B, S, C) and (B, C, S) have the same shape."""
    hidden = Feature("last_hidden_state", (1, 16, 16), "fp32")
    reference = {"last_hidden_state": ("bsc", 16)}
    with pytest.raises(MappingError, match=r"fits layouts \['bsc', 'bcs'\].*--map"):
        match_outputs(_function(outputs=[hidden]), reference, 1, 16, MapFile(), "pkg")
    given = MapFile(outputs={"last_hidden_state": MappedOutput("last_hidden_state", "bcs")})
    (match,) = match_outputs(_function(outputs=[hidden]), reference, 1, 16, given, "pkg")
    assert (match.layout, match.how) == ("bcs", "--map")


def test_an_output_of_no_layout_the_reference_has_is_refused():
    wrong = Feature("logits", (1, 3, 16), "fp32")
    with pytest.raises(MappingError, match=r"does not have the shape.*bc \(1, 2\)"):
        match_outputs(_function(outputs=[wrong]), {"logits": ("bc", 2)}, 1, 16, MapFile(), "pkg")


def test_a_generated_name_is_matched_only_when_one_reference_output_has_its_shape():
    out = Feature("var_7", (1, 32), "fp32")
    (match,) = match_outputs(
        _function(outputs=[out]), {"logits": ("bc", 32), "x": ("bsc", 8)}, 1, 16, MapFile(), "p"
    )
    assert match.reference == "logits" and "only reference output of its shape" in match.how
    with pytest.raises(MappingError, match="its shape fits the"):
        match_outputs(
            _function(outputs=[out]),
            {"logits": ("bc", 32), "pooler_output": ("bc", 32)},
            1,
            16,
            MapFile(),
            "p",
        )


def test_inputs_that_cannot_be_told_are_refused():
    with pytest.raises(MappingError, match="cannot tell what it is"):
        match_inputs(_function([IDS, Feature("extra", (1, 16), "int32")]), ENCODER_INPUTS, MapFile(), "p")
    with pytest.raises(MappingError, match="both attention_mask"):
        match_inputs(
            _function([IDS, Feature("mask", (1, 16), "int32"), Feature("attention_mask", (1, 16), "int32")]),
            ENCODER_INPUTS,
            MapFile(),
            "p",
        )
    with pytest.raises(MappingError, match="0/1 or additive cannot be told"):
        match_inputs(
            _function([IDS, Feature("attention_mask", (1, 16), "fp16")]), ENCODER_INPUTS, MapFile(), "p"
        )
    with pytest.raises(MappingError, match="no input is the token ids"):
        match_inputs(_function([Feature("attention_mask", (1, 16), "int32")]), ENCODER_INPUTS, MapFile(), "p")


def test_an_integer_mask_is_0_1_and_flexible_sizes_are_admitted():
    mask = Feature("attention_mask", (1, Flexible(1, 64)), "int32")
    matches = match_inputs(_function([IDS, mask]), ENCODER_INPUTS, MapFile(), "p")
    assert {m.role: m.form for m in matches} == {"input_ids": None, "attention_mask": "keep"}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[inputs]\nx = 'nonsense'\n", "expected one of"),
        ("[outputs]\ny = { layout = 'bsc' }\n", "reference ="),
        ("context = 0\n", "positive number"),
        ("[other]\n", "unknown entries"),
        ("not toml [", "not readable TOML"),
    ],
)
def test_a_map_file_that_is_not_one_is_refused(text, expected, tmp_path):
    path = tmp_path / "map.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=expected):
        read_map(str(path))
