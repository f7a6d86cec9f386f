import numpy as np
import pytest
import torch
from PIL import Image

from neurocwm.data import augment, image_batches, scan_image_folder
from neurocwm.data.deadleaves import dead_leaves


def test_dead_leaves_seeded_and_in_range():
    a = dead_leaves(4, 48, seed=3)
    b = dead_leaves(4, 48, seed=3)
    c = dead_leaves(4, 48, seed=4)
    assert a.shape == (4, 3, 48, 48)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1


@pytest.mark.parametrize("size, seed", [(96, 0), (112, 7), (50, 3)])
def test_dead_leaves_crops_paint_the_same_pixels_as_the_batched_loop(size, seed):
    # the CPU path evaluates each shape only inside its bounding box: not one pixel may differ
    a = dead_leaves(6, size, seed=seed, method="batched")
    b = dead_leaves(6, size, seed=seed, method="crops")
    assert torch.equal(a, b)
    assert torch.equal(dead_leaves(6, size, seed=seed), a)  # "auto" is one of the two
    with pytest.raises(ValueError, match="method"):
        dead_leaves(2, size, method="fast")


def test_dead_leaves_is_natural_like():
    # occluding power-law shapes give a falling power spectrum, roughly 1/f^2 (slope -2 ... -3)
    x = dead_leaves(32, 96, seed=0).mean(1).numpy()
    f = np.abs(np.fft.fftshift(np.fft.fft2(x - x.mean((1, 2), keepdims=True)), axes=(1, 2))) ** 2
    f = f.mean(0)
    yy, xx = np.indices(f.shape) - 48
    r = np.hypot(yy, xx).astype(int)
    radial = np.bincount(r.ravel(), f.ravel()) / np.bincount(r.ravel())
    k = np.arange(3, 40)
    slope = np.polyfit(np.log(k), np.log(radial[k]), 1)[0]
    assert -3.2 < slope < -1.6
    # many distinct regions, not flat images
    assert x.std(axis=(1, 2)).min() > 0.03


def test_full_box_crop_is_identity_and_flip_mirrors():
    x = torch.rand(2, 3, 16, 16)
    box = torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 2)
    torch.testing.assert_close(augment.resized_crop(x, box, 16), x, atol=1e-5, rtol=0)
    flipped = augment.resized_crop(x, box, 16, torch.tensor([True, False]))
    torch.testing.assert_close(flipped[0], x[0].flip(-1), atol=1e-5, rtol=0)
    torch.testing.assert_close(flipped[1], x[1], atol=1e-5, rtol=0)


def test_crop_boxes_inside_image_with_requested_area():
    g = torch.Generator().manual_seed(0)
    b = augment.crop_boxes(2000, g)
    assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all()
    assert (b[:, 0] + b[:, 2] <= 1 + 1e-6).all() and (b[:, 1] + b[:, 3] <= 1 + 1e-6).all()
    area = b[:, 2] * b[:, 3]
    assert area.min() >= 0.05 and area.max() <= 1.0


def test_grayscale_blur_and_jitter_properties():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 3, 20, 20)
    gray = augment.random_grayscale(x, g, p=1.0)
    assert torch.allclose(gray[:, 0], gray[:, 1]) and torch.allclose(gray[:, 1], gray[:, 2])
    blurred = augment.gaussian_blur(x, g, p=1.0, sigma=(1.5, 1.5))
    assert blurred.std() < x.std()  # low-pass
    torch.testing.assert_close(blurred.mean(dim=(2, 3)), x.mean(dim=(2, 3)), atol=0.02, rtol=0)
    unchanged = augment.gaussian_blur(x, g, p=0.0, sigma=(0.1, 2.0))
    torch.testing.assert_close(unchanged, x)
    same = augment.color_jitter(x, g, 0.8, 0.8, 0.8, 0.2, p=0.0)
    assert torch.equal(same, x)
    jit = augment.color_jitter(x, g, 0.0, 0.0, 0.0, 0.2, p=1.0)
    # a hue rotation keeps luminance
    lum = lambda t: 0.299 * t[:, 0] + 0.587 * t[:, 1] + 0.114 * t[:, 2]
    inside = (jit > 0.001) & (jit < 0.999)
    mask = inside.all(1)
    torch.testing.assert_close(lum(jit)[mask], lum(x)[mask], atol=1e-4, rtol=0)


def test_generated_batches_are_reproducible_per_step():
    kw = dict(data=None, objective="simclr", batch_size=4, image_size=32, seed=0, device=torch.device("cpu"))
    a = list(zip(range(3), image_batches(**kw, total_steps=3)))
    b = next(image_batches(**kw, start_step=2, total_steps=3))
    torch.testing.assert_close(a[2][1]["x1"], b["x1"])
    assert not torch.equal(a[0][1]["x1"], a[0][1]["x2"])  # two different views


def _write_folder(root, n_per_class=3, corrupt=0):
    for cls in ("cats", "dogs"):
        (root / cls).mkdir(parents=True)
        for i in range(n_per_class):
            arr = (np.random.default_rng(i).random((40, 50, 3)) * 255).astype(np.uint8)
            Image.fromarray(arr).save(root / cls / f"{i}.png")
    for i in range(corrupt):
        (root / "dogs" / f"bad{i}.jpg").write_bytes(b"not a jpeg at all")


def test_scan_folder_labels_and_errors(tmp_path):
    _write_folder(tmp_path / "d")
    paths, labels, classes = scan_image_folder(tmp_path / "d")
    assert classes == ["cats", "dogs"] and len(paths) == 6
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(FileNotFoundError):
        scan_image_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="no image files"):
        scan_image_folder(tmp_path / "empty")


def test_folder_batches_skip_and_count_corrupt_files(tmp_path):
    _write_folder(tmp_path / "d", n_per_class=4, corrupt=2)
    kw = dict(
        data=str(tmp_path / "d"),
        objective="simclr",
        batch_size=10,
        image_size=32,
        seed=0,
        device=torch.device("cpu"),
        total_steps=1,
    )
    batch = next(image_batches(**kw))
    assert batch["n_bad"] == 2 and len({path for path, _ in batch["bad"]}) == 2  # reported by the trainer, once each
    assert batch["x1"].shape == (8, 3, 32, 32)
