"""Nodule-cube datasets: Report 2's shape (one labelled split "all", cubes cropped around a nodule mask,
cut into stratified folds). M3DV is the course's own; NoduleMNIST3D prepared the same way stands in for it."""

M3DV = "m3dv"
NODULE_CUBES = "nodulemnist3d-cubes"  # NoduleMNIST3D (28³ or 64³) auto-masked, cropped, folded like M3DV
CUBE_SETS = (M3DV, NODULE_CUBES)


def is_cube_set(name: str) -> bool:
    """True for the datasets trained by folds on cropped cubes (`--crop`, `--mask`, `--fold`)."""
    return str(name).strip().lower() in CUBE_SETS
