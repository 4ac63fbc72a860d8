"""Notebook 04's DenseNet walk-through against the model itself and Report 2's published figures."""
from medlib.models import build_model, count_parameters
from medlib.report import dense_layers


def test_channels_grow_by_the_growth_rate_and_every_parameter_is_counted_once():
    t = dense_layers.growth_table(32)
    dense = t[t["step"].str.contains("dense layer")]
    assert ((dense["channels out"] - dense["channels in"]) == 16).all()  # Report 2's growth rate
    trans = t[t["step"].str.startswith("transition")].iloc[0]
    assert trans["channels out"] == trans["channels in"] // 2 and trans["output side"] == 16  # compression 2, pool 2
    assert t["parameters"].sum() == count_parameters(build_model("densenet3d", 1, 2)) == 134_834


def test_size_on_disk_is_near_report2s_file():
    mb = dense_layers.size_on_disk().set_index("file")["MB"]
    assert mb.iloc[0] < mb.iloc[1] < 2 * mb.iloc[2]  # weights < weights + Adamax state ~ Report 2's 1.77 MB
