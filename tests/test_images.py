"""`neurocwm.images`: the one place for image reading, extensions, the layout flip, the resize for a
model and the ImageNet constants."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from neurocwm import images
from neurocwm.assemblies import StimulusSet

ROOT = Path(__file__).resolve().parents[1]


def _sources():
    for pkg in ("neurocwm", "topography"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            yield path, path.read_text()


def test_constants_and_extensions_are_written_once():
    """No module but neurocwm/images.py writes the ImageNet statistics or a set of image suffixes."""
    mean = re.compile(r"0\.485\s*,\s*0\.456\s*,\s*0\.406")
    std = re.compile(r"0\.229\s*,\s*0\.224\s*,\s*0\.225")
    suffixes = re.compile(r"""["']\.jpe?g["']\s*,\s*["']\.(png|jpe?g|bmp)["']""")
    offenders = [
        f"{p.relative_to(ROOT)}: {what}"
        for p, text in _sources()
        if p.name != "images.py"
        for what, rx in (("mean", mean), ("std", std), ("suffixes", suffixes))
        if rx.search(text)
    ]
    assert offenders == []
    assert images.IMAGENET_MEAN == (0.485, 0.456, 0.406) and images.IMAGENET_STD == (0.229, 0.224, 0.225)
    from neurocwm.cwm import model as cwm_model
    from neurocwm.datasets.folder import IMAGE_SUFFIXES

    assert cwm_model.IMAGENET_MEAN is images.IMAGENET_MEAN  # imported, not a copy
    assert set(IMAGE_SUFFIXES) == images.IMAGE_EXTENSIONS


def test_channels_first_round_trip():
    a = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    b = images.channels_first(a)
    assert b.shape == (2, 3, 5, 7) and b.dtype == np.uint8 and b.flags.c_contiguous
    np.testing.assert_array_equal(b, a.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(np.moveaxis(b, -3, -1), a)
    assert images.channels_first(a[0]).shape == (3, 5, 7)
    with pytest.raises(ValueError, match=r"\(\.\.\., H, W, C\), got shape \(4, 4\)"):
        images.channels_first(np.zeros((4, 4)))


def test_read_rgb(tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    got = images.read_rgb(tmp_path / "a.png")
    assert got.dtype == np.uint8 and got.shape == (6, 9, 3)
    np.testing.assert_array_equal(got, rgb)
    np.testing.assert_array_equal(images.read_rgb((tmp_path / "a.png").read_bytes()), rgb)  # bytes, e.g. from a zip
    gray = rng.integers(0, 256, (4, 5), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    np.testing.assert_array_equal(images.read_rgb(tmp_path / "g.png"), np.repeat(gray[..., None], 3, axis=2))
    rgba = np.concatenate([rgb, np.full((6, 9, 1), 7, np.uint8)], axis=2)
    Image.fromarray(rgba).save(tmp_path / "t.png")
    np.testing.assert_array_equal(images.read_rgb(tmp_path / "t.png"), rgb)  # alpha dropped
    wide = np.array([[0, 257, 65535], [32896, 1000, 60000]], dtype=np.uint16)  # 16-bit greyscale: scaled, not clipped
    Image.fromarray(wide).save(tmp_path / "w.png")
    np.testing.assert_array_equal(images.read_rgb(tmp_path / "w.png")[..., 0], [[0, 1, 255], [128, 4, 233]])
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(ValueError, match=r"^cannot read .*bad\.png as an image \(UnidentifiedImageError") as err:
        images.read_rgb(tmp_path / "bad.png")
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="cannot read stimulus 'x' as an image"):
        images.read_rgb(b"junk", name="stimulus 'x'")
    with pytest.raises(FileNotFoundError, match="no such image"):
        images.read_rgb(tmp_path / "missing.png")
    assert images.is_image_file(tmp_path / "a.png") and not images.is_image_file(tmp_path / "missing.png")
    (tmp_path / "B.JPEG").write_bytes(b"")
    (tmp_path / "c.txt").write_text("")
    assert images.is_image_file(tmp_path / "B.JPEG") and not images.is_image_file(tmp_path / "c.txt")


def test_resize_images_is_the_antialiased_bilinear_resize():
    x = torch.rand(3, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    assert images.resize_images(x, 40) is x  # already at size: untouched
    y = images.resize_images(x, 16)
    ref = torch.nn.functional.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False, antialias=True)
    torch.testing.assert_close(y, ref, rtol=0, atol=0)
    torch.testing.assert_close(images.resize_images(x[1:2], 16), y[1:2], rtol=0, atol=0)  # per image
    assert images.resize_images(x, (10, 20)).shape == (3, 3, 10, 20)
    # a constant image stays constant, a pixel-wise checkerboard (at Nyquist) averages out
    flat = images.resize_images(torch.full((1, 3, 40, 40), 0.3), 13)
    torch.testing.assert_close(flat, torch.full((1, 3, 13, 13), 0.3))
    checker = torch.from_numpy((np.indices((40, 40)).sum(0) % 2).astype(np.float32))[None, None].expand(1, 3, -1, -1)
    small = images.resize_images(checker.contiguous(), 13)
    assert float((small - 0.5).abs().max()) < 0.05
    with pytest.raises(ValueError, match=r"\(B, C, H, W\), got shape \(3, 40, 40\)"):
        images.resize_images(x[0], 16)


def test_normalize():
    x = torch.rand(2, 3, 4, 4)
    got = images.normalize(x)
    for c in range(3):
        torch.testing.assert_close(got[:, c], (x[:, c] - images.IMAGENET_MEAN[c]) / images.IMAGENET_STD[c])


class _CountingStimuli:
    """A stimulus set that counts the images read."""

    def __init__(self, stim):
        self.stim, self.reads = stim, []

    def read_bytes(self, sid):
        self.reads.append(sid)
        return self.stim.read_bytes(sid)


def test_stimulus_images_reads_lazily_at_the_model_size(tmp_path):
    rng = np.random.default_rng(2)
    paths, raw = [], []
    for i in range(6):
        a = rng.integers(0, 256, (20 + 4 * i, 30, 3), dtype=np.uint8)  # sizes differ
        raw.append(a)
        paths.append(tmp_path / f"s{i}.png")
        Image.fromarray(a).save(paths[-1])
    stim = _CountingStimuli(StimulusSet.from_records([f"s{i}" for i in range(6)], [str(p) for p in paths]))
    imgs = images.StimulusImages(stim, ["s5", "s0", "s3", "s1"], 16)
    assert len(imgs) == 4 and stim.reads == []
    batch = imgs[1:3]
    assert stim.reads == ["s0", "s3"]  # only the slice is read
    assert batch.shape == (2, 3, 16, 16) and batch.dtype == np.float32
    for got, k in zip(batch, (0, 3)):
        x = torch.from_numpy(raw[k].transpose(2, 0, 1).astype(np.float32) / 255)[None]
        ref = torch.nn.functional.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False, antialias=True)
        np.testing.assert_array_equal(got, ref[0].numpy())
    np.testing.assert_array_equal(imgs[0], imgs[0:1][0])
    assert imgs[4:].shape == (0, 3, 16, 16)
    with pytest.raises(ValueError, match="size must be >= 1"):
        images.StimulusImages(stim, ["s0"], 0)
