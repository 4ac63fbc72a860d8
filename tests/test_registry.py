"""The registry against the oracle: medmnist.INFO (v3.0.2) must agree with every fact medlib ships."""

import pytest
from medmnist.info import INFO

from medlib.data import registry
from medlib.errors import MedlibError


def test_all_18_sets_match_official_info():
    assert registry.names() == list(INFO)
    assert len(registry.names(dims=2)) == 12 and len(registry.names(dims=3)) == 6
    for name, official in INFO.items():
        ours = registry.info(name)
        for key in ("task", "label", "n_channels", "n_samples", "url", "MD5"):
            assert ours[key] == official[key], (name, key)
        for size in registry.sizes(name)[1:]:
            assert registry.url(name, size) == official[f"url_{size}"]
            assert registry.md5(name, size) == official[f"MD5_{size}"]


def test_sizes_and_file_names():
    assert registry.sizes("pathmnist") == (28, 64, 128, 224)
    assert registry.sizes("nodulemnist3d") == (28, 64)
    assert registry.file_name("pathmnist", 28) == "pathmnist.npz"
    assert registry.file_name("organmnist3d", 64) == "organmnist3d_64.npz"


@pytest.mark.parametrize(
    "v1,v2",
    [
        ("organmnist_axial", "organamnist"),
        ("organmnist_coronal", "organcmnist"),
        ("OrganMNIST_Sagittal", "organsmnist"),
    ],
)
def test_report1_v1_names_are_accepted(v1, v2):
    assert registry.canonical(v1) == v2


def test_unknown_dataset_names_it_and_suggests():
    with pytest.raises(MedlibError, match=r"Unknown dataset 'pathmnst'.*Did you mean 'pathmnist'"):
        registry.canonical("pathmnst")


def test_size_not_offered():
    with pytest.raises(MedlibError, match=r"Size 128 is not offered for 'adrenalmnist3d'; choose one of 28, 64"):
        registry.check_size("adrenalmnist3d", 128)
    with pytest.raises(MedlibError, match="Size 32 is not offered for 'breastmnist'"):
        registry.file_name("breastmnist", 32)
