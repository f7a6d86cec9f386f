"""fLoc loader: layout, ordering, conversion, errors; plus the real stimulus set."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import require_shared
from PIL import Image

from neurocwm.datasets.floc import (
    DOMAIN_CATEGORIES,
    DOMAINS,
    EXCLUDED_CATEGORIES,
    domain_masks,
    list_floc_files,
    load_floc,
)


def _write(path: Path, value: int, size=(20, 20), mode="L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "L":
        arr = np.full(size[::-1], value, dtype=np.uint8)
    else:
        arr = np.zeros((size[1], size[0], 3), dtype=np.uint8)
        arr[..., 0] = value
    Image.fromarray(arr, mode=mode).save(path, quality=100)


def test_domains_constant():
    assert set(DOMAINS) == {"Faces", "Bodies", "Characters", "Places", "Objects"}
    assert DOMAINS["Faces"] == ("adult", "child")
    assert DOMAINS["Places"] == ("house", "corridor")
    assert len(DOMAIN_CATEGORIES) == 10 and "scrambled" not in DOMAIN_CATEGORIES
    assert EXCLUDED_CATEGORIES == ("scrambled",)


def test_order_sizes_and_conversion(tmp_path):
    root = tmp_path / "stimuli"
    # numeric order must beat lexicographic order: 2 < 10
    for n, v in [(10, 200), (2, 100), (1, 50)]:
        _write(root / "adult" / f"adult-{n}.jpg", v, size=(30, 40))
    _write(root / "body" / "body-1.jpg", 255, size=(16, 16), mode="RGB")
    (root / "body" / "notes.txt").write_text("ignored")
    _write(root / "body" / "other-3.jpg", 10)  # wrong pattern: ignored
    stim = load_floc(root, size=(8, 12), categories=["body", "adult"])
    assert stim.images.shape == (4, 3, 8, 12)
    assert stim.images.dtype == np.float32
    assert list(stim.categories) == ["adult", "adult", "adult", "body"]
    assert [p.name for p in stim.paths] == ["adult-1.jpg", "adult-2.jpg", "adult-10.jpg", "body-1.jpg"]
    # gray replicated to 3 identical channels, values /255
    np.testing.assert_allclose(
        stim.images[:3].mean(axis=(2, 3)), np.repeat([[50], [100], [200]], 3, 1) / 255, atol=2 / 255
    )
    # RGB image keeps its channels: red 255, green/blue 0
    np.testing.assert_allclose(stim.images[3].mean(axis=(1, 2)), [1.0, 0.0, 0.0], atol=2 / 255)
    assert stim.n_skipped == 0 and len(stim) == 4


def test_parent_folder_accepted(tmp_path):
    _write(tmp_path / "stimuli" / "car" / "car-1.jpg", 9)
    assert len(load_floc(tmp_path, size=4, categories=["car"])) == 1


def test_corrupt_files_skipped_and_counted(tmp_path):
    root = tmp_path / "stimuli"
    _write(root / "car" / "car-1.jpg", 9)
    (root / "car" / "car-2.jpg").write_bytes(b"not a jpeg at all")
    (root / "car" / "car-3.jpg").write_bytes(b"")
    with pytest.warns(UserWarning, match=r"skipped 2 unreadable"):
        stim = load_floc(root, size=4, categories=["car"])
    assert stim.n_skipped == 2
    assert sorted(p.name for p in stim.skipped) == ["car-2.jpg", "car-3.jpg"]
    assert stim.images.shape == (1, 3, 4, 4)


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_floc(tmp_path / "nope")
    (tmp_path / "s" / "car").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="house"):
        load_floc(tmp_path / "s", categories=["car", "house"])
    with pytest.raises(ValueError, match="no fLoc images"):
        load_floc(tmp_path / "s", categories=["car"])
    (tmp_path / "s" / "car" / "car-1.jpg").write_bytes(b"junk")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="unreadable"):
            load_floc(tmp_path / "s", categories=["car"])
    with pytest.raises(ValueError, match="size"):
        load_floc(tmp_path / "s", size=(0, 3), categories=["car"])
    with pytest.raises(ValueError, match="duplicates"):
        list_floc_files(tmp_path / "s", categories=["car", "car"])


def test_domain_masks():
    masks = domain_masks(["adult", "car", "scrambled", "child"])
    assert masks["Faces"].tolist() == [True, False, False, True]
    assert masks["Objects"].tolist() == [False, True, False, False]
    assert not any(m[2] for m in masks.values())


def test_real_floc_stimuli():
    root = require_shared("floc", "stimuli")
    files = list_floc_files(root)
    assert len(files) == 1440
    stim = load_floc(root, size=32)
    assert stim.images.shape == (1440, 3, 32, 32)
    assert stim.n_skipped == 0
    cats, counts = np.unique(stim.categories, return_counts=True)
    assert cats.tolist() == sorted(DOMAIN_CATEGORIES) and (counts == 144).all()
    assert [p.name for p in stim.paths[:3]] == ["adult-1.jpg", "adult-2.jpg", "adult-3.jpg"]
    assert stim.paths[143].name == "adult-144.jpg"
    assert 0.0 <= stim.images.min() and stim.images.max() <= 1.0
    # grayscale originals -> identical channels
    np.testing.assert_array_equal(stim.images[:, 0], stim.images[:, 2])
    assert len(list_floc_files(root, include_excluded=True)) == 1584
