"""Recipe parsing: defaults filled in, and every bad recipe refused in one line naming file, stage and key."""

from pathlib import Path

import pytest

from edge.errors import EdgeError
from train.compress.recipe import (
    Dsd,
    FilterPrune,
    Int8,
    KMeans,
    MagnitudePrune,
    Recipe,
    SemiStructured,
    Store,
    check_fc_ratios,
    check_layers,
    load_recipe,
    parse_recipe,
)

FULL = """
[[stage]]
kind = "filter_prune"
criterion = "correlation"
conv_ratio = 0.1
fc_ratio = 0.3
finetune_epochs = 2
lr = 0.001

[[stage]]
kind = "magnitude_prune"

[[stage]]
kind = "dsd"
epochs = 3

[[stage]]
kind = "semi_structured"
layers = "backbone.stages.*"

[[stage]]
kind = "kmeans"

[[stage]]
kind = "store"

[[stage]]
kind = "int8"
"""


def stage(kind: str, body: str = "") -> str:
    return f'[[stage]]\nkind = "{kind}"\n{body}\n'


def refused(text: str) -> str:
    with pytest.raises(EdgeError) as e:
        parse_recipe(text, "r.toml")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("r.toml: ")
    return msg


def test_a_full_recipe_parses_with_every_default_filled():
    r = parse_recipe(FULL, "full.toml")
    assert r == Recipe("full.toml", (
        FilterPrune(criterion="correlation", conv_ratio=0.1, fc_ratio=0.3, finetune_epochs=2, lr=0.001),
        MagnitudePrune(), Dsd(epochs=3), SemiStructured(layers=("backbone.stages.*",)), KMeans(), Store(), Int8()))
    fp, mp, _, ss, km, st, _ = r.stages
    assert (fp.layers, fp.average_inputs) == (None, False)
    assert (mp.conv_sparsity, mp.fc_sparsity, mp.step, mp.finetune_epochs, mp.lr) == (0.9, 0.95, 0.1, 0, None)
    assert ss.layers == ("backbone.stages.*",)
    assert (km.conv_bits, km.fc_bits) == (8, 5)
    assert (st.conv_index_bits, st.fc_index_bits) == (8, 5)
    assert [s.kind for s in r.stages] == ["filter_prune", "magnitude_prune", "dsd", "semi_structured", "kmeans",
                                          "store", "int8"]


def test_ratio_and_sparsity_stand_for_both_layer_kinds():
    r = parse_recipe(stage("filter_prune", 'criterion = "l1"\nratio = 0.3') + stage("magnitude_prune", "sparsity = 0.8"))
    assert (r.stages[0].conv_ratio, r.stages[0].fc_ratio) == (0.3, 0.3)
    assert (r.stages[1].conv_sparsity, r.stages[1].fc_sparsity) == (0.8, 0.8)


def test_one_of_conv_ratio_fc_ratio_leaves_the_other_layers_whole():
    r = parse_recipe(stage("filter_prune", 'criterion = "geometric_median"\nconv_ratio = 0.25\naverage_inputs = true'))
    assert r.stages[0] == FilterPrune(criterion="geometric_median", conv_ratio=0.25, fc_ratio=0.0, average_inputs=True)
    r = parse_recipe(stage("magnitude_prune", "fc_sparsity = 0.5\nstep = 0.25"))
    assert r.stages[0] == MagnitudePrune(conv_sparsity=0.9, fc_sparsity=0.5, step=0.25)


def test_fc_ratio_may_be_one_value_per_hidden_fc_layer():
    r = parse_recipe(stage("filter_prune", 'criterion = "correlation"\nconv_ratio = 0.1\nfc_ratio = [0.3, 0.4]'), "r.toml")
    assert r.stages[0].fc_ratio == (0.3, 0.4)
    check_fc_ratios(r, 2)
    with pytest.raises(EdgeError) as e:
        check_fc_ratios(r, 0)
    assert str(e.value) == "r.toml: stage 1 (filter_prune): fc_ratio: 2 values, the model has 0 hidden FC layers"
    check_fc_ratios(parse_recipe(stage("filter_prune", 'criterion = "l1"\nratio = 0.2')), 0)  # one value: any model


def test_layers_may_be_a_list_of_globs():
    r = parse_recipe(stage("semi_structured", 'layers = ["a.*", "b"]'))
    assert r.stages[0].layers == ("a.*", "b")


def test_exact_messages():
    assert refused(stage("prune")) == ("r.toml: stage 1: kind: unknown 'prune' (one of filter_prune, magnitude_prune, "
                                       "dsd, semi_structured, kmeans, store, int8)")
    assert refused(stage("filter_prune", 'criterion = "l1"\nrato = 0.5')) == (
        "r.toml: stage 1 (filter_prune): 'rato': unknown key (allowed: average_inputs, conv_ratio, criterion, fc_ratio, "
        "finetune_epochs, layers, lr, ratio, stream_ratio)")
    assert refused(stage("kmeans") + stage("filter_prune", 'criterion = "l1"\nratio = 1.0')) == (
        "r.toml: stage 2 (filter_prune): ratio: 1.0 is outside [0, 1)")
    assert refused(stage("filter_prune", 'criterion = "l1"\nratio = 0.2\nconv_ratio = 0.1')) == (
        "r.toml: stage 1 (filter_prune): ratio: cannot be combined with conv_ratio/fc_ratio")
    assert refused(stage("store") + stage("kmeans")) == (
        "r.toml: stage 1 (store): kind: 'store' comes before any pruning or quantization stage "
        "(nothing to store sparsely)")
    assert refused("") == "r.toml: empty recipe (no [[stage]] tables)"
    assert refused(stage("kmeans", "fc_bits = 17")) == "r.toml: stage 1 (kmeans): fc_bits: 17 is outside 1..16"


@pytest.mark.parametrize(("text", "where"), [
    (stage("filter_prune", 'criterion = "l1"\nratio = -0.1'), "stage 1 (filter_prune): ratio: -0.1 is outside [0, 1)"),
    (stage("filter_prune", 'criterion = "l1"\nfc_ratio = 1'), "stage 1 (filter_prune): fc_ratio: 1 is outside [0, 1)"),
    (stage("filter_prune", 'criterion = "l1"\nfc_ratio = [0.3, 1.0]'),
     "stage 1 (filter_prune): fc_ratio: 1.0 is outside [0, 1)"),
    (stage("filter_prune", 'criterion = "l1"\nfc_ratio = []'), "stage 1 (filter_prune): fc_ratio: [] is empty"),
    (stage("filter_prune", 'criterion = "l1"\nconv_ratio = nan'), "stage 1 (filter_prune): conv_ratio: nan is outside"),
    (stage("magnitude_prune", "sparsity = 1.5"), "stage 1 (magnitude_prune): sparsity: 1.5 is outside [0, 1)"),
    (stage("magnitude_prune", "conv_sparsity = 1.0"), "stage 1 (magnitude_prune): conv_sparsity: 1.0 is outside"),
    (stage("magnitude_prune", "sparsity = 0.5\nfc_sparsity = 0.6"),
     "stage 1 (magnitude_prune): sparsity: cannot be combined with conv_sparsity/fc_sparsity"),
    (stage("magnitude_prune", "step = 0"), "stage 1 (magnitude_prune): step: 0 is outside (0, 1]"),
    (stage("kmeans", "conv_bits = 0"), "stage 1 (kmeans): conv_bits: 0 is outside 1..16"),
    (stage("kmeans", "conv_bits = 8.0"), "stage 1 (kmeans): conv_bits: 8.0 is not an integer"),
    (stage("kmeans") + stage("store", "conv_index_bits = 0"), "stage 2 (store): conv_index_bits: 0 is outside 1..16"),
    (stage("kmeans") + stage("store", "fc_index_bits = 32"), "stage 2 (store): fc_index_bits: 32 is outside 1..16"),
    (stage("int8", "finetune_epochs = -1"), "stage 1 (int8): finetune_epochs: -1 is below 0"),
    (stage("int8", "lr = 0"), "stage 1 (int8): lr: 0 is not a positive finite number"),
    (stage("int8", "lr = true"), "stage 1 (int8): lr: True is not a number"),
    (stage("int8", "bits = 8"), "stage 1 (int8): 'bits': unknown key (allowed: finetune_epochs, lr)"),
    (stage("filter_prune", "ratio = 0.2"), "stage 1 (filter_prune): criterion: missing (one of l1, covariance, "),
    (stage("filter_prune", 'criterion = "l2"\nratio = 0.2'), "stage 1 (filter_prune): criterion: 'l2' is not one of"),
    (stage("filter_prune", 'criterion = "l1"'), "stage 1 (filter_prune): ratio: missing (give ratio, or conv_ratio"),
    (stage("filter_prune", 'criterion = "l1"\nstream_ratio = 1.0'),
     "stage 1 (filter_prune): stream_ratio: 1.0 is outside [0, 1)"),
    (stage("filter_prune", 'criterion = "l1"\nratio = 0.2\naverage_inputs = "yes"'),
     "stage 1 (filter_prune): average_inputs: 'yes' is not true or false"),
    (stage("semi_structured", "layers = []"), "stage 1 (semi_structured): layers: [] is not a glob or a non-empty"),
    (stage("magnitude_prune") + stage("dsd"), "stage 2 (dsd): epochs: missing"),
    (stage("dsd", "epochs = 2"), "stage 1 (dsd): kind: 'dsd' needs an earlier magnitude_prune"),
    ("[[stage]]\nratio = 0.5\n", "stage 1: kind: missing (one of filter_prune, "),
    ("stages = 1\n", "unknown top-level key 'stages' (a recipe is [[stage]] tables only)"),
    ("stage = 1\n", "'stage' must be [[stage]] tables"),
    ("[[stage]\n", "not valid TOML: "),
])
def test_every_rejection_is_one_edge_error_line(text, where):
    assert refused(text).startswith(f"r.toml: {where}")


def test_load_recipe_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(stage("kmeans", "conv_bits = 99"))
    with pytest.raises(EdgeError, match=rf"^{path}: stage 1 \(kmeans\): conv_bits: 99 is outside 1..16$"):
        load_recipe(path)
    path.write_text(FULL)
    assert load_recipe(path).source == str(path)
    with pytest.raises(EdgeError, match=r"missing\.toml: cannot read the recipe \(No such file or directory\)$"):
        load_recipe(tmp_path / "missing.toml")


def test_check_layers_rejects_a_glob_matching_no_module():
    r = parse_recipe(stage("filter_prune", 'criterion = "l1"\nratio = 0.2\nlayers = "backbone.*.conv1"')
                     + stage("semi_structured", 'layers = ["fc", "backbone.nope.*"]'), "r.toml")
    names = ["backbone.stem", "backbone.stages.0.0.conv1", "fc"]
    with pytest.raises(EdgeError) as e:
        check_layers(r, names)
    assert str(e.value) == "r.toml: stage 2 (semi_structured): layers: 'backbone.nope.*' matches no module"
    check_layers(r, [*names, "backbone.nope.x"])
    with pytest.raises(EdgeError, match="stage 1 .* 'backbone.\\*.conv1' matches no module"):
        check_layers(r, ["Backbone.stages.0.0.conv1", "fc", "backbone.nope.x"])  # case-sensitive


def test_check_layers_passes_stages_without_layers():
    check_layers(parse_recipe(stage("magnitude_prune") + stage("semi_structured") + stage("store")), [])


SHIPPED = sorted(Path(__file__).parents[3].joinpath("recipes").glob("*.toml"))


def test_the_demo_and_example_recipes_are_shipped():
    assert {p.name for p in SHIPPED} >= {"demo.toml", "deep_compression.toml", "momp_table2.toml", "streams_int8.toml"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_the_shipped_recipes_are_valid(path):
    assert len(load_recipe(path).stages) >= 2
