"""The recipe format: every config the contract names parses and prints back; every bad option is refused
with the option, the value and what is allowed; recipe files; deployment targets."""

from __future__ import annotations

import pytest

from verification.compression.recipe import (
    NONE,
    Palettize,
    Prune,
    Quantize,
    Recipe,
    RecipeError,
    check_target,
    load_recipe,
    parse_compress,
    parse_config,
    recipe_toml,
)


@pytest.mark.parametrize(
    "text,expected,target",
    [
        ("palettize:4", dict(palettize=Palettize(4)), "iOS16"),
        ("palettize:3", dict(palettize=Palettize(3)), "iOS18"),
        ("palettize:2:mode=uniform:group=16", dict(palettize=Palettize(2, "uniform", 16)), "iOS18"),
        ("quantize:int8", dict(quantize=Quantize("int8")), "iOS16"),
        ("quantize:int8:mode=asymmetric", dict(quantize=Quantize("int8", False)), "iOS16"),
        ("quantize:int4:block=32", dict(quantize=Quantize("int4", True, 32)), "iOS18"),
        ("prune:0.5", dict(prune=Prune(0.5)), "iOS16"),
        ("prune:0.5+palettize:4", dict(prune=Prune(0.5), palettize=Palettize(4)), "iOS18"),
        ("prune:0.75+quantize:int8", dict(prune=Prune(0.75), quantize=Quantize("int8")), "iOS18"),
        ("palettize:4+quantize:int8", dict(palettize=Palettize(4), quantize=Quantize("int8")), "iOS18"),
    ],
)
def test_every_contract_form_parses_and_prints_back(text, expected, target):
    config = parse_config(text)
    assert config == type(config)(**expected)
    assert parse_config(config.text()) == config
    assert config.minimum_target == target


@pytest.mark.parametrize(
    "text,bits",
    [
        ("quantize:int8", 8),
        ("palettize:3", 3),
        ("quantize:int4:block=32", 4 + 16 / 32),  # an fp16 scale per block of 32
        ("prune:0.5", 16 * 0.5 + 1),  # half the fp16 values and a bit mask
        # 0.75: the kept share (0.25) and the pruned one differ, so counting the wrong one shows
        ("prune:0.75", 16 * 0.25 + 1),
        ("prune:0.75+palettize:4", 4 * 0.25 + 1),
        ("prune:0.75+quantize:int8", 8 * 0.25 + 2),  # the mask is stored twice (docs/compression.md)
        ("none", 16),
    ],
)
def test_nominal_bits(text, bits):
    got = parse_config(text).nominal_bits
    assert got == pytest.approx(bits), f"{text}: nominal {got} bits per weight, expected {bits}"
    assert NONE.nominal_bits == 16 and parse_config("none").is_none


@pytest.mark.parametrize(
    "text,expected",
    [
        ("palettize:5", "palettize bit width 5 is not one of (1, 2, 3, 4, 6, 8)"),
        ("palettize:four", "bit width 'four' is not an integer"),
        ("palettize", "palettize needs a bit width"),
        ("palettize:4:group=0", "group 0 must be positive"),
        ("palettize:4:mode=median", "palettize mode 'median' is not one of ('kmeans', 'uniform')"),
        ("palettize:4:groups=16", "unknown setting 'groups=16'; allowed: mode=..., group=..."),
        ("quantize:int3", "quantize dtype 'int3' is not one of ('int8', 'int4')"),
        ("quantize:int4:block=-2", "block -2 must be positive"),
        ("prune:1.5", "prune needs a sparsity in (0, 1)"),
        ("prune:0", "prune needs a sparsity in (0, 1)"),
        ("sparsify:0.5", "unknown compression 'sparsify'"),
        ("palettize:4+palettize:8", "names palettize twice"),
        ("palettize:4+quantize:int8:block=32", "quantized per tensor only"),
        ("prune:0.5+palettize:4+quantize:int8", "at most two forms"),
    ],
)
def test_bad_configs_name_option_value_and_what_is_allowed(text, expected):
    with pytest.raises(RecipeError, match="--compress") as error:
        parse_config(text)
    assert expected in str(error.value)


@pytest.mark.parametrize(
    "text,target",
    [
        ("quantize:int4:block=32", "iOS17"),
        ("palettize:4:group=16", "iOS16"),
        ("prune:0.5+palettize:4", "iOS17"),
    ],
)
def test_a_form_the_deployment_target_cannot_hold_is_refused(text, target):
    with pytest.raises(RecipeError) as error:
        check_target(parse_compress(text), target)
    message = str(error.value)
    assert "needs deployment target iOS18 or newer" in message and f"got {target}" in message
    assert "quantize:int8 per channel" in message  # what is allowed there
    check_target(parse_compress(text), "iOS18")


def test_recipe_files(tmp_path):
    path = tmp_path / "recipe.toml"
    path.write_text(
        '[compression]\ndefault = "palettize:4"\n[compression.op_types]\ngather = "none"\n'
        '[compression.layers]\n"backbone.layers.0.ffn.fc1" = "quantize:int8"\n'
    )
    recipe = parse_compress(f"recipe={path}")
    assert recipe.default == parse_config("palettize:4")
    assert recipe.config_for("conv_3", "conv", "backbone.layers.0.ffn.fc1") == parse_config("quantize:int8")
    assert recipe.config_for("conv_3", "conv", "backbone.layers.1.ffn.fc1") == parse_config("palettize:4")
    assert recipe.config_for("gather_0", "gather") is NONE or recipe.config_for("gather_0", "gather").is_none
    assert recipe.minimum_target == "iOS16"
    assert Recipe(parse_config("palettize:4")).with_layers({"x": NONE}).layers == {"x": NONE}


def test_a_module_path_covers_the_weights_under_it_and_the_most_specific_wins():
    recipe = Recipe(
        parse_config("palettize:4"),
        layers={
            "backbone.layers.1": parse_config("palettize:8"),
            "backbone.layers.1.ffn.fc1": NONE,
            "op_7": parse_config("quantize:int8"),
        },
    )
    assert recipe.config_for("a", "conv", "backbone.layers.1.self_attn.q_proj").text() == "palettize:8"
    assert recipe.config_for("b", "conv", "backbone.layers.1.ffn.fc1").is_none
    assert recipe.config_for("c", "conv", "backbone.layers.10.ffn.fc1").text() == "palettize:4"  # not 1
    assert recipe.config_for("op_7", "conv", "backbone.layers.1.ffn.fc1").text() == "quantize:int8"
    assert recipe.config_for("d", "conv", None).text() == "palettize:4"


def test_a_written_recipe_reads_back_to_the_same_recipe(tmp_path):
    recipe = Recipe(
        parse_config("palettize:4:mode=uniform"),
        {"gather": NONE},
        {"backbone.layers.0.self_attn.q_proj": parse_config("palettize:8"), 'odd "name"': NONE},
    )
    path = tmp_path / "mixed_recipe.toml"
    path.write_text(
        recipe_toml(recipe, "written by a test\nsecond line", {"backbone.layers.0.self_attn.q_proj": "x"})
    )
    back = load_recipe(path)
    assert (back.default, back.op_types, back.layers) == (recipe.default, recipe.op_types, recipe.layers)
    assert path.read_text().startswith("# written by a test\n# second line\n[compression]")


@pytest.mark.parametrize(
    "content,expected",
    [
        (None, "cannot read the recipe"),
        ("[compression\n", "not valid TOML"),
        ("[other]\n", "expected a [compression] table"),
        ('[compression]\ndefaults = "palettize:4"\n', "unknown keys ['defaults']"),
        ("[compression]\ndefault = 4\n", "default must be a config string"),
        ('[compression]\ndefault = "palettize:9"\n', "palettize bit width 9"),
        ('[compression.layers]\n"fc1" = 8\n', "maps names to config strings"),
    ],
)
def test_broken_recipe_files(tmp_path, content, expected):
    path = tmp_path / "recipe.toml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(RecipeError, match=f"recipe={path}") as error:
        load_recipe(path)
    assert expected in str(error.value)
