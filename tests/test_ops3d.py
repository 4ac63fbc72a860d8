"""ops: crop / mask against explicit numpy, augmentations against torch oracles, mixup and its loss."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medlib.errors import MedlibError
from medlib.ops import (
    apply_mask,
    augment_batch,
    auto_mask,
    crop_cube,
    mask_centroid,
    mixup,
    random_flip,
    random_rot90,
    random_shift,
    rotate,
    rotations,
    sample_lambda,
    soft_loss,
    soft_targets,
)

# ---- crop / mask ----


@pytest.mark.parametrize("n, size", [(64, 32), (100, 32), (65, 5), (9, 9), (7, 1)])
def test_crop_cube_default_centre_is_central_slice(n, size):
    v = np.random.default_rng(0).integers(0, 255, (n, n, n), dtype=np.uint8)
    c = round((n - 1) / 2 + 1e-9)  # the voxel at (or half-up of) the geometric centre
    s = slice(c - size // 2, c - size // 2 + size)
    np.testing.assert_array_equal(crop_cube(v, size), v[s, s, s])


def test_crop_cube_pads_with_zeros_past_the_border():
    v = np.arange(1, 8**3 + 1).reshape(8, 8, 8)
    out = crop_cube(v, 6, center=(1, 6.4, 4))  # starts at (-2, 3, 1)
    expected = np.zeros((6, 6, 6), v.dtype)
    expected[2:, :5, :] = v[0:4, 3:8, 1:7]
    np.testing.assert_array_equal(out, expected)
    assert crop_cube(v, 4, center=(100, 100, 100)).sum() == 0


def test_crop_cube_is_shift_invariant_for_half_voxel_centres():
    v = np.random.default_rng(1).integers(0, 255, (20, 20, 20))
    big = np.pad(v, 18)
    for c in [(9.5, 9.5, 9.5), (10.5, 8.5, 9.49)]:
        np.testing.assert_array_equal(crop_cube(v, 8, c), crop_cube(big, 8, np.add(c, 18)))


def test_crop_cube_bad_input():
    with pytest.raises(MedlibError, match="positive integer"):
        crop_cube(np.zeros((4, 4, 4)), 0)
    with pytest.raises(MedlibError, match="3 coordinates; the volume has 2 axes"):
        crop_cube(np.zeros((4, 4)), 2, center=(1, 1, 1))


def test_mask_centroid_and_empty_mask():
    seg = np.zeros((10, 10, 10), bool)
    seg[2:5, 4, 6:10] = True
    np.testing.assert_allclose(mask_centroid(seg), [3, 4, 7.5])
    with pytest.raises(MedlibError, match="mask is empty"):
        mask_centroid(np.zeros((3, 3, 3), bool))


def test_apply_mask_and_dilation():
    v = np.full((9, 9, 9), 7, np.uint8)
    seg = np.zeros_like(v, bool)
    seg[4, 4, 4] = True
    out = apply_mask(v, seg)
    assert out.dtype == np.uint8 and out.sum() == 7
    ball = apply_mask(v, seg, dilate=2) > 0
    d2 = ((np.indices(v.shape) - 4) ** 2).sum(0)
    np.testing.assert_array_equal(ball, d2 <= 4)  # Euclidean ball of radius 2
    with pytest.raises(MedlibError, match="shape"):
        apply_mask(v, seg[:-1])


def test_auto_mask_keeps_the_central_component():
    v = np.zeros((20, 20, 20), np.uint8)
    v[8:12, 8:12, 8:12] = 200  # centre blob
    v[0:3, 0:3, 0:3] = 250  # brighter blob in a corner
    m = auto_mask(v)
    np.testing.assert_array_equal(m, v == 200)
    off = np.zeros_like(v)
    off[1:4, 10:13, 10:13] = 200  # no blob at the centre: the nearest one is kept
    off[17:20, 0:2, 0:2] = 200
    np.testing.assert_array_equal(auto_mask(off), np.pad(np.ones((3, 3, 3), bool), ((1, 16), (10, 7), (10, 7))))
    assert not auto_mask(np.zeros((5, 5, 5))).any()


# ---- augmentation ----


def _batch(n=6, dims=3, side=6, dtype=torch.uint8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 255, (n, 2, *([side] * dims)), generator=g).to(dtype)


@pytest.mark.parametrize("dims", [2, 3])
def test_random_flip_matches_torch_flip_per_sample(dims):
    x = _batch(n=16, dims=dims)
    y = random_flip(x, torch.Generator().manual_seed(3))
    combos = set()
    for xi, yi in zip(x, y):
        match = [f for f in _subsets(range(1, dims + 1)) if torch.equal(yi, xi.flip(f) if f else xi)]
        assert match, "output is not a flip of its input"
        combos.add(match[0])
    assert len(combos) > 2  # samples draw their own flips


def _subsets(axes):
    axes = list(axes)
    return [tuple(a for j, a in enumerate(axes) if m >> j & 1) for m in range(2 ** len(axes))]


def test_rotation_group_sizes_and_closure():
    for dims, order in [(2, 4), (3, 24)]:
        group = rotations(dims)
        x = torch.arange(4**dims).reshape(1, 1, *[4] * dims)
        images = [rotate(x, *g) for g in group]
        assert len({tuple(im.flatten().tolist()) for im in images}) == order
        for g in group:  # composing two rotations gives a rotation of the set
            for h in group[:4]:
                assert any(torch.equal(rotate(rotate(x, *g), *h), im) for im in images)
    x2 = torch.arange(16).reshape(1, 1, 4, 4)
    assert {tuple(rotate(x2, *g).flatten().tolist()) for g in rotations(2)} == {
        tuple(torch.rot90(x2, k, (2, 3)).flatten().tolist()) for k in range(4)
    }


@pytest.mark.parametrize("dims", [2, 3])
def test_random_rot90_gives_group_elements_and_keeps_values(dims):
    x = _batch(n=30, dims=dims)
    y = random_rot90(x, torch.Generator().manual_seed(0))
    used = set()
    for xi, yi in zip(x, y):
        assert torch.equal(xi.flatten().sort().values, yi.flatten().sort().values)  # same multiset
        k = [i for i, g in enumerate(rotations(dims)) if torch.equal(rotate(xi[None], *g)[0], yi)]
        assert k
        used.add(k[0])
    assert len(used) > 3


def test_random_rot90_needs_cubic_sides():
    with pytest.raises(MedlibError, match="equal spatial sides"):
        random_rot90(torch.zeros(2, 1, 4, 4, 5))


@pytest.mark.parametrize("dims", [2, 3])
def test_random_shift_matches_np_roll_in_the_interior(dims):
    k, side = 2, 9
    x = _batch(n=10, dims=dims, side=side, dtype=torch.float32)
    y = random_shift(x, k, torch.Generator().manual_seed(1))
    inner = (slice(None),) + (slice(k, side - k),) * dims
    offsets_seen = set()
    for xi, yi in zip(x.numpy(), y.numpy()):
        # find this sample's offset by comparing with every roll
        hits = [
            o
            for o in np.ndindex(*([2 * k + 1] * dims))
            if np.array_equal(np.roll(xi, np.subtract(o, k), axis=tuple(range(1, dims + 1)))[inner], yi[inner])
        ]
        assert len(hits) == 1
        o = np.subtract(hits[0], k)
        offsets_seen.add(tuple(o))
        for a, oa in enumerate(o):  # the strip shifted in from outside is zero
            strip = [slice(None)] * (dims + 1)
            strip[a + 1] = slice(0, oa) if oa > 0 else slice(side + oa, side)
            assert (yi[tuple(strip)] == 0).all()
    assert len(offsets_seen) > 3


def test_augment_batch_keeps_dtype_shape_and_is_seeded():
    for dtype in (torch.uint8, torch.float32):
        x = _batch(dtype=dtype)
        a = augment_batch(x, flip=True, shift=2, rot90=True, generator=torch.Generator().manual_seed(5))
        b = augment_batch(x, flip=True, shift=2, rot90=True, generator=torch.Generator().manual_seed(5))
        assert a.dtype == dtype and a.shape == x.shape and a.device == x.device and torch.equal(a, b)
    none = augment_batch(x)
    assert torch.equal(none, x) and none.data_ptr() != x.data_ptr()
    with pytest.raises(MedlibError, match="batch"):
        augment_batch(torch.zeros(3, 4, 4), flip=True)
    with pytest.raises(MedlibError, match="shift"):
        random_shift(x, -1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_augment_on_cuda_equals_cpu_with_a_cpu_generator():
    x = _batch(n=8)
    kw = dict(flip=True, shift=2, rot90=True)
    cpu = augment_batch(x, **kw, generator=torch.Generator().manual_seed(9))
    gpu = augment_batch(x.cuda(), **kw, generator=torch.Generator().manual_seed(9))
    assert torch.equal(cpu, gpu.cpu())


# ---- mixup ----


def test_sample_lambda():
    assert sample_lambda(0) == 1.0 and sample_lambda(-1) == 1.0
    lams = [sample_lambda(0.2, torch.Generator().manual_seed(s)) for s in range(200)]
    assert all(0 <= v <= 1 for v in lams)
    assert np.mean([min(v, 1 - v) < 0.1 for v in lams]) > 0.5  # Beta(0.2, 0.2) piles up near 0 and 1
    assert sample_lambda(0.2, torch.Generator().manual_seed(7)) == sample_lambda(0.2, torch.Generator().manual_seed(7))


def test_mixup_is_the_convex_combination_with_a_permutation():
    n = 8
    x = torch.randn(n, 1, 4, 4, 4)
    y = torch.eye(n)  # one identity per sample, so the partner can be read off the targets
    xm, ym, lam = mixup(x, y, 1.0, torch.Generator().manual_seed(2))
    assert 0 < lam < 1
    perm = (ym - lam * y).argmax(1)
    assert sorted(perm.tolist()) == list(range(n))
    torch.testing.assert_close(ym, lam * y + (1 - lam) * y[perm])
    torch.testing.assert_close(xm, lam * x + (1 - lam) * x[perm])


def test_mixup_targets_stay_soft():
    y = soft_targets(torch.tensor([0, 1, 1, 0, 1, 0]), "binary-class", 2)
    _, ym, lam = mixup(torch.randn(6, 3), y, 0.4, torch.Generator().manual_seed(0))
    torch.testing.assert_close(ym.sum(1), torch.ones(6))
    assert ym.dtype == torch.float32 and ((ym > 0) & (ym < 1)).any()  # not cast back to 0/1
    with pytest.raises(MedlibError, match="soft float targets"):
        mixup(torch.randn(6, 3), torch.tensor([0, 1, 1, 0, 1, 0]), 0.4)


def test_soft_targets():
    torch.testing.assert_close(
        soft_targets(torch.tensor([2, 0]), "multi-class", 3), torch.tensor([[0.0, 0, 1], [1, 0, 0]])
    )
    ml = torch.tensor([[0, 1, 1], [1, 0, 0]], dtype=torch.float32)
    assert torch.equal(soft_targets(ml, "multi-label, binary-class", 3), ml)
    with pytest.raises(MedlibError, match=r"in \[0, 3\)"):
        soft_targets(torch.tensor([3]), "multi-class", 3)
    with pytest.raises(MedlibError, match="Unknown task"):
        soft_targets(torch.tensor([0]), "regression", 1)


@pytest.mark.parametrize("task", ["binary-class", "multi-class", "ordinal-regression"])
def test_soft_loss_equals_cross_entropy_on_one_hot(task):
    logits, y = torch.randn(7, 5), torch.randint(0, 5, (7,))
    torch.testing.assert_close(soft_loss(logits, soft_targets(y, task, 5), task), F.cross_entropy(logits, y))


def test_soft_loss_multilabel_equals_bce():
    logits, y = torch.randn(7, 4), torch.randint(0, 2, (7, 4)).float()
    task = "multi-label, binary-class"
    torch.testing.assert_close(soft_loss(logits, y, task), torch.nn.BCEWithLogitsLoss()(logits, y))
    with pytest.raises(MedlibError, match="same shape"):
        soft_loss(logits, y[:, :2], task)
