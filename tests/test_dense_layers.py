"""Notebook 04's DenseNet walk-through against the model itself and Report 2's published figures."""

from medlib.models import build_model, count_parameters
from medlib.report import layers


def test_channels_grow_by_the_growth_rate_and_every_parameter_is_counted_once():
    t = layers.growth_table(32)
    dense = t[t["step"].str.contains("dense layer")]
    assert ((dense["channels out"] - dense["channels in"]) == 16).all()  # Report 2's growth rate
    trans = t[t["step"].str.startswith("transition")].iloc[0]
    assert trans["channels out"] == trans["channels in"] // 2 and trans["output side"] == 16  # compression 2, pool 2
    assert t["parameters"].sum() == count_parameters(build_model("densenet3d", 1, 2)) == 134_834


def test_size_on_disk_is_near_report2s_file():
    mb = layers.size_on_disk().set_index("file")["MB"]
    assert mb.iloc[0] < mb.iloc[1] < 2 * mb.iloc[2]  # weights < weights + Adamax state ~ Report 2's 1.77 MB


def test_the_layer_table_counts_with_the_training_time_estimates_counter():
    """One FLOP counter (engine.cost): Report 1's layer table's multiply-adds are half its forward FLOPs."""
    from medlib.engine.cost import flops_per_sample

    for arch, stem in (("resnet18", "small"), ("resnet50", "imagenet")):
        eval_flops = flops_per_sample(arch, 3, 10, (3, 28, 28), stem)["eval"]
        assert 2 * layers.macs(arch, 28, stem, in_channels=3, num_classes=10) == eval_flops
