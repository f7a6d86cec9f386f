"""Training data: the embedded generators (dead leaves by default) and image folders, as per-step batches.

:func:`image_batches` yields, for every training step, a dict with either two augmented views
``x1``, ``x2`` (SimCLR) or ``x`` and labels ``y`` (supervised), already on the device and
normalised, plus ``n_bad`` (unreadable files skipped in this batch). The batch of step ``s``
depends only on ``(seed, rank, s)``, so a resumed run continues with the same data.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch

from . import augment
from .deadleaves import dead_leaves
from .folder import EpochBatchSampler, ImageFolderViews, _EpochIndexed, collate_views, scan_image_folder
from .generators import GENERATORS, generate

__all__ = [
    "dead_leaves",
    "GENERATORS",
    "generate",
    "image_batches",
    "scan_image_folder",
    "step_seed",
    "GENERATED_EPOCH",
]

#: Images per "epoch" of the generated (dead-leaves) data, so that ``--epochs`` means something.
GENERATED_EPOCH = 10_000


def step_seed(*parts: int) -> int:
    """A 63-bit seed derived from integers (e.g. ``(seed, rank, step)``)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0]) >> 1


def image_batches(
    *,
    data: str | None,
    objective: str,
    batch_size: int,
    image_size: int,
    seed: int,
    device: torch.device,
    rank: int = 0,
    world: int = 1,
    start_step: int = 0,
    total_steps: int | None = None,
    workers: int = 0,
    generator: str = "deadleaves",
) -> Iterator[dict]:
    """Per-step batches for TDANN training (``batch_size`` = images per rank).

    Without ``data`` the images come from the procedural ``generator`` (:data:`GENERATORS`).
    """
    photometric = augment.simclr_photometric if objective == "simclr" else augment.supervised_photometric
    n_views = 2 if objective == "simclr" else 1
    step = start_step
    if data is None:
        if objective != "simclr":
            raise ValueError(
                "--objective supervised needs labelled images: pass --data FOLDER with one sub-folder per class"
            )
        source = max(image_size, int(math.ceil(image_size * 1.25 / 8) * 8))
        while total_steps is None or step < total_steps:
            g = torch.Generator().manual_seed(step_seed(seed, rank, step))
            imgs = generate(generator, batch_size, source, seed=step_seed(seed, rank, step, 1), device=device)
            views = []
            for _ in range(n_views):
                boxes = augment.crop_boxes(batch_size, g)
                flip = torch.rand(batch_size, generator=g) < 0.5
                views.append(photometric(augment.resized_crop(imgs, boxes, image_size, flip), g, image_size))
            yield {"x1": views[0], "x2": views[1], "n_bad": 0}
            step += 1
        return

    dataset = ImageFolderViews(data, image_size, n_views=n_views, seed=seed)
    sampler = EpochBatchSampler(len(dataset), batch_size * world, seed, rank, world, start_step, total_steps)
    loader = torch.utils.data.DataLoader(
        _EpochIndexed(dataset),
        batch_sampler=sampler,
        num_workers=workers,
        collate_fn=collate_views,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
    )
    for batch in loader:
        g = torch.Generator().manual_seed(step_seed(seed, rank, step))
        if batch["views"] is None:
            yield {"n_bad": batch["n_bad"], "bad": batch.get("bad", []), "empty": True}
            step += 1
            continue
        v = batch["views"].to(device, non_blocking=True).float().div_(255.0)
        out = {"n_bad": batch["n_bad"], "bad": batch.get("bad", [])}
        if objective == "simclr":
            out["x1"] = photometric(v[:, 0], g, image_size)
            out["x2"] = photometric(v[:, 1], g, image_size)
        else:
            out["x"] = photometric(v[:, 0], g, image_size)
            out["y"] = batch["labels"].to(device)
        yield out
        step += 1


def count_images(data: str) -> int:
    """Number of images in a data folder (for epoch-based step counts)."""
    return len(scan_image_folder(data)[0])
