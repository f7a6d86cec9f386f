"""Still images for analyses: a user's image folder, or seeded dead-leaves images (no download)."""

from __future__ import annotations

import os
import warnings

import numpy as np

from .deadleaves import dead_leaves
from .folder import scan_image_folder

__all__ = ["load_stills", "generated_stills"]


def generated_stills(n: int, size: int, seed: int = 0, batch: int = 64) -> np.ndarray:
    """``n`` dead-leaves images (n, 3, size, size) float32 in [0, 1], seeded."""
    if n < 1 or size < 1:
        raise ValueError(f"n and size must be >= 1, got {n} and {size}")
    out = [dead_leaves(min(batch, n - s), size, seed=seed + s).numpy() for s in range(0, n, batch)]
    return np.concatenate(out).astype(np.float32, copy=False)


def load_stills(root: str | os.PathLike, size: int, n: int | None = None, seed: int = 0) -> np.ndarray:
    """Images of a folder (recursively) as (n, 3, size, size) float32 in [0, 1].

    Each image is centre-cropped to a square and resized (bicubic). With ``n``, a seeded random
    subset of ``n`` images is used (all of them if there are fewer). Unreadable files are skipped
    with one warning that counts them.

    Raises
    ------
    FileNotFoundError
        If ``root`` is not a folder.
    ValueError
        If it holds no image, or none can be read.
    """
    from PIL import Image

    from neurocwm.images import channels_first, read_rgb

    paths, _, _ = scan_image_folder(root)
    order = np.random.default_rng(seed).permutation(len(paths)) if n is not None else np.arange(len(paths))
    chosen = [paths[i] for i in order]
    images, bad = [], []
    for p in chosen:
        if n is not None and len(images) == n:
            break
        try:
            rgb = Image.fromarray(read_rgb(p))
        except ValueError:
            bad.append(p)
            continue
        w, h = rgb.size
        s = min(w, h)
        box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
        rgb = rgb.resize((size, size), Image.Resampling.BICUBIC, box=box)
        images.append(channels_first(np.asarray(rgb, dtype=np.float32)) / np.float32(255.0))
    if bad:
        warnings.warn(f"skipped {len(bad)} unreadable image(s) under {root}, e.g. {bad[0]}", UserWarning, stacklevel=2)
    if not images:
        raise ValueError(f"none of the {len(chosen)} image files under {root} could be read")
    return np.clip(np.stack(images), 0.0, 1.0)
