"""Images from a folder (e.g. ImageNet's ``train/<class>/<image>.JPEG`` layout).

Class labels come from the immediate sub-folders that hold images (sorted names); a flat folder
gives one class. Each item is decoded with Pillow and cut into ``n_views`` random resized crops
(with random horizontal flips) by the worker; colour augmentations then run batched on the
training device (:mod:`neurocwm.data.augment`). Randomness depends only on ``(seed, epoch,
index, view)``, so results do not depend on the number of workers, and a resumed run sees the
same crops. Corrupt, unreadable or oversized files (above Pillow's decompression-bomb limit) are
skipped and reported once each by the trainer. 16-bit images are scaled to 8 bits, not clipped.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from neurocwm.images import IMAGE_EXTENSIONS, channels_first, to_rgb
from neurocwm.images import READ_ERRORS as IMAGE_ERRORS


def scan_image_folder(root: str | Path) -> tuple[list[Path], np.ndarray, list[str]]:
    """List the images under ``root`` (recursively) with class labels.

    Returns
    -------
    paths : list of Path
        Sorted image paths.
    labels : ndarray of int64
        Class index of each image (sorted sub-folder names; 0 for a flat folder).
    classes : list of str
        Class names.

    Raises
    ------
    FileNotFoundError
        If ``root`` does not exist or is not a folder.
    ValueError
        If it holds no image files.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"data folder {root} does not exist")
    if not root.is_dir():
        raise FileNotFoundError(f"expected a folder of images, got the file {root}")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not paths:
        raise ValueError(f"no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) found under {root}")
    top = [p.relative_to(root).parts for p in paths]
    if all(len(t) > 1 for t in top):
        classes = sorted({t[0] for t in top})
        index = {c: i for i, c in enumerate(classes)}
        labels = np.array([index[t[0]] for t in top], dtype=np.int64)
    else:
        classes = [root.name]
        labels = np.zeros(len(paths), dtype=np.int64)
    return paths, labels, classes


class Unreadable:
    """Placeholder item for an image file that could not be read (path and reason)."""

    def __init__(self, path, reason: str):
        self.path, self.reason = str(path), reason


def _crop_box(w: int, h: int, rng: np.random.Generator, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    area = w * h
    for _ in range(10):
        target = area * rng.uniform(*scale)
        r = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = int(round(math.sqrt(target * r))), int(round(math.sqrt(target / r)))
        if 0 < cw <= w and 0 < ch <= h:
            x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            return x0, y0, x0 + cw, y0 + ch
    s = min(w, h)  # fallback: central square crop
    return (w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s


class ImageFolderViews(torch.utils.data.Dataset):
    """Dataset of ``n_views`` random-resized, randomly flipped crops of each image (uint8 CHW)."""

    def __init__(self, root: str | Path, image_size: int, n_views: int = 2, seed: int = 0):
        self.paths, self.labels, self.classes = scan_image_folder(root)
        self.image_size = int(image_size)
        self.n_views = int(n_views)
        self.seed = int(seed)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        try:
            with Image.open(self.paths[index]) as im:
                im.load()
                im = to_rgb(im)
        except IMAGE_ERRORS as exc:  # reported once per file by the trainer, not per worker and epoch
            return Unreadable(self.paths[index], f"{type(exc).__name__}: {exc}")
        views = []
        for _ in range(self.n_views):
            box = _crop_box(im.width, im.height, rng)
            v = im.resize((self.image_size, self.image_size), Image.BILINEAR, box=box)
            if rng.random() < 0.5:
                v = v.transpose(Image.FLIP_LEFT_RIGHT)
            views.append(torch.from_numpy(channels_first(np.asarray(v, dtype=np.uint8))))
        return torch.stack(views), int(self.labels[index])


def collate_views(items):
    """Stack the readable items; list the unreadable ones (:class:`Unreadable`) as ``bad``: (path, reason)."""
    good = [it for it in items if it is not None and not isinstance(it, Unreadable)]
    bad = [(it.path, it.reason) for it in items if isinstance(it, Unreadable)]
    n_bad = len(items) - len(good)
    if not good:
        return {"views": None, "labels": None, "n_bad": n_bad, "bad": bad}
    views = torch.stack([v for v, _ in good])  # (B, V, 3, H, W) uint8
    labels = torch.tensor([lab for _, lab in good], dtype=torch.int64)
    return {"views": views, "labels": labels, "n_bad": n_bad, "bad": bad}


class EpochBatchSampler(torch.utils.data.Sampler):
    """Batches of a per-epoch seeded permutation, split across ranks, from a given step on.

    Step ``s`` of the run is batch ``s % steps_per_epoch`` of epoch ``s // steps_per_epoch``;
    each rank takes a strided share of the global batch. Incomplete last batches are dropped.
    """

    def __init__(
        self,
        n: int,
        global_batch: int,
        seed: int,
        rank: int = 0,
        world: int = 1,
        start_step: int = 0,
        total_steps: int | None = None,
    ):
        if global_batch > n:
            raise ValueError(f"batch size {global_batch} is larger than the dataset ({n} images)")
        self.n, self.global_batch, self.seed = n, global_batch, seed
        self.rank, self.world = rank, world
        self.start_step, self.total_steps = start_step, total_steps
        self.steps_per_epoch = n // global_batch

    def __iter__(self):
        step = self.start_step
        while self.total_steps is None or step < self.total_steps:
            epoch, k = divmod(step, self.steps_per_epoch)
            perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            batch = perm[k * self.global_batch : (k + 1) * self.global_batch]
            yield [(epoch, int(i)) for i in batch[self.rank :: self.world]]
            step += 1

    def __len__(self) -> int:
        if self.total_steps is None:
            raise TypeError("infinite sampler")
        return self.total_steps - self.start_step


class _EpochIndexed(torch.utils.data.Dataset):
    """Wraps :class:`ImageFolderViews` so that items are addressed by ``(epoch, index)``."""

    def __init__(self, base: ImageFolderViews):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key):
        epoch, index = key
        self.base.epoch = epoch
        return self.base[index]
