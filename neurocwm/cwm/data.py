"""The CWM family's data: seeded training batches, the data pool and the fixed validation set.

Batches are seeded by ``(seed, rank, step)``, so every rank sees different videos, the stream can be
restarted at any step (exact resume) and no global RNG is touched. Videos are generated
(:class:`~neurocwm.cwm.video.SyntheticVideos`) or read from a folder
(:class:`~neurocwm.cwm.video.VideoFolder`); visibility masks are those of
:func:`~neurocwm.cwm.masking.sample_visible`.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from neurocwm.images import channels_first

from .config import VAL_SEED, scene_config, visible_count
from .masking import sample_visible
from .model import PRESETS
from .scenes import SyntheticVideos, make_pair
from .video_files import VideoFolder

__all__ = ["batch_stream", "validation_set", "synthetic_pool", "augment_pair", "synth_frames"]


def batch_stream(
    cfg: dict, rank: int = 0, world: int = 1, start_step: int = 0, device: torch.device | str | None = None
) -> Iterator[dict[str, Tensor]]:
    """Endless batches ``{"frames": (b, 2, 3, H, W), "visible": (b, N)}`` for one rank.

    ``b = batch_size // world``. Batch ``s`` depends only on ``(seed, rank, s)``; the next
    batch is generated in a background thread while the current step runs.
    """
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"need 0 <= rank < world, got rank={rank}, world={world}")
    if cfg["batch_size"] % world:
        raise ValueError(f"batch_size {cfg['batch_size']} is not divisible by world size {world}")
    b = cfg["batch_size"] // world
    size = int(cfg["image_size"])
    patch = PRESETS[cfg["arch"]].patch_size
    grid = size // patch
    n = grid * grid
    clump = int(cfg["clump"])
    lo, hi = visible_count(n, cfg["visible_min"]), visible_count(n, cfg["visible_max"])
    counts = [k for k in range(lo, hi + 1) if k % (clump * clump) == 0]
    seed = int(cfg.get("seed", 0))
    folder = VideoFolder(cfg["data"], cfg["gap_ms"], size=size, fps=cfg.get("fps")) if cfg.get("data") else None
    synth = SyntheticVideos(scene_config(cfg, size), seed=seed) if folder is None else None
    n_pool = int(cfg.get("data_pool") or 0) if folder is None else 0
    pool = synthetic_pool(synth, n_pool, [seed, rank]) if n_pool else None

    def make(step: int) -> dict[str, Tensor]:
        ss = np.random.SeedSequence([seed, rank, step])
        rng = np.random.default_rng(ss)
        if folder is not None:
            frames = np.stack([folder.sample(rng) for _ in range(b)])
        elif pool is not None:
            frames = np.stack([augment_pair(pool[int(i)], rng) for i in rng.integers(0, n_pool, size=b)])
        else:
            frames = np.stack([synth_frames(synth, [seed, rank, step, 1 + j]) for j in range(b)])
        k = int(counts[int(rng.integers(len(counts)))])
        gen = torch.Generator().manual_seed(int(ss.generate_state(1)[0]))
        vis = sample_visible(b, grid, k, generator=gen, clump=clump)
        out = {"frames": torch.from_numpy(frames), "visible": vis}
        if device is not None:
            out = {key: v.to(device, non_blocking=True) for key, v in out.items()}
        return out

    def stream() -> Iterator[dict[str, Tensor]]:
        with cf.ThreadPoolExecutor(max_workers=1) as pool:
            nxt = pool.submit(make, start_step)
            step = start_step
            while True:
                cur = nxt.result()
                step += 1
                nxt = pool.submit(make, step)
                yield cur

    return stream()


def validation_set(cfg: dict, size: int, n_pairs: int, n_points: int) -> dict[str, np.ndarray]:
    """The fixed validation pairs and query points (independent of the training seed).

    Points are non-occluded frame-0 pixels that move at least 1 px, at least 2 px from the border,
    half of them on objects when there are any.

    Returns
    -------
    dict with ``frames`` (n_pairs, 2, 3, H, W), ``flow`` (n_pairs, H, W, 2), ``pair`` (P,),
    ``points`` (P, 2) (x, y), ``gt`` (P, 2).
    """
    data = SyntheticVideos(scene_config(cfg, size, spots=False), seed=VAL_SEED).batch(range(n_pairs))
    rng = np.random.default_rng(VAL_SEED)
    per = max(1, n_points // n_pairs)
    pair, pts = [], []
    yy, xx = np.mgrid[0:size, 0:size]
    inner = (xx >= 2) & (xx <= size - 3) & (yy >= 2) & (yy <= size - 3)
    for i in range(n_pairs):
        ok = inner & ~data["occluded"][i] & (np.linalg.norm(data["flow"][i], axis=-1) >= 1.0)
        obj = np.flatnonzero((ok & (data["ids"][i] > 0)).ravel())
        anyp = np.flatnonzero(ok.ravel())
        if len(anyp) == 0:
            continue
        n_obj = per // 2 if len(obj) else 0
        take = list(rng.choice(obj, n_obj)) + list(rng.choice(anyp, per - n_obj))
        for t in take:
            pair.append(i)
            pts.append((t % size, t // size))
    pair_a = np.asarray(pair, np.int64)
    pts_a = np.asarray(pts, np.float32).reshape(-1, 2)
    gt = (
        data["flow"][pair_a, pts_a[:, 1].astype(int), pts_a[:, 0].astype(int)]
        if len(pair_a)
        else np.zeros((0, 2), np.float32)
    )
    return {"frames": data["frames"], "flow": data["flow"], "pair": pair_a, "points": pts_a, "gt": gt}


def synthetic_pool(synth: SyntheticVideos, n: int, entropy: list[int], progress: bool = False) -> np.ndarray:
    """``n`` synthetic pairs (n, 2, 3, H, W) float16, pair ``i`` seeded by ``entropy + [-1, i]``.

    Generating a 64 px pair costs about 10 ms of one core, the same order as a training step of
    the tiny tier per 32 pairs; a pool reused with :func:`augment_pair` removes that cost.
    """
    from neurocwm.progress import progress_bar as tqdm

    out = np.empty((n, 2, 3, synth.cfg.size, synth.cfg.size), np.float16)
    for i in tqdm(range(n), disable=not progress, desc="data pool"):
        out[i] = synth_frames(synth, [*entropy, 2**31 - 1, i])
    return out


def augment_pair(pair: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random symmetry of a pair that is still a valid video: one of the 8 flips/transposes of the
    square applied to both frames, and time reversal with probability 1/2."""
    x = pair.astype(np.float32)
    k = int(rng.integers(8))
    if k & 1:
        x = x[..., ::-1]
    if k & 2:
        x = x[..., ::-1, :]
    if k & 4:
        x = x.swapaxes(-1, -2)
    if rng.uniform() < 0.5:
        x = x[::-1]
    return np.ascontiguousarray(x)


def synth_frames(synth: SyntheticVideos, entropy: list[int]) -> np.ndarray:
    """Frames (2, 3, H, W) of the synthetic pair seeded by ``entropy``."""
    return channels_first(make_pair(np.random.SeedSequence(entropy), synth.cfg)["frames"])
