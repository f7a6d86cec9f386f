"""Real two-frame training videos: frame pairs a fixed gap apart from folders of frames or video files.

Folders of frames take their frame rate from the call or a ``fps.txt``; video files are decoded with
PyAV when it is installed. Generated videos with exact ground truth are in :mod:`neurocwm.cwm.scenes`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from neurocwm.images import IMAGE_EXTENSIONS, channels_first, read_rgb, resize_images

__all__ = ["VideoFolder"]

_VIDEO_EXT = {".mp4", ".avi", ".mov", ".mkv", ".webm"}


class VideoFolder:
    """Frame pairs ``gap_ms`` apart from a folder of videos.

    Each sub-folder holding image files is one video (frames in name order); its frame rate comes
    from a ``fps.txt`` in that sub-folder or from ``fps``. Video files (``.mp4`` etc.) are decoded with
    PyAV, which must then be installed. Pairs get one random multi-scale square crop (scales 1,
    0.875, 0.75, 0.66 of the short side, the "multiscale" augmentation of the ECCV'24 CWM release,
    Venkatesh et al. 2024, ECCV), are resized to ``size`` and flipped horizontally at random,
    identically for both frames.

    Parameters
    ----------
    root : str or Path
    gap_ms : float
        Time between the two frames in milliseconds.
    size : int, default=64
    fps : float, optional
        Frame rate of image-folder videos without ``fps.txt``.
    """

    def __init__(self, root: str | Path, gap_ms: float, size: int = 64, fps: float | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"video folder not found: {self.root}")
        if gap_ms <= 0:
            raise ValueError(f"gap_ms must be > 0, got {gap_ms}")
        self.gap_ms, self.size, self.fps = float(gap_ms), int(size), fps
        self.videos: list[tuple[str, Path, list[Path] | None, float]] = []
        for d in sorted(p for p in self.root.rglob("*") if p.is_dir()) + [self.root]:
            frames = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
            if len(frames) >= 2:
                rate = self._folder_fps(d)
                self.videos.append(("frames", d, frames, rate))
        files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in _VIDEO_EXT)
        if files:
            try:
                import av  # noqa: F401
            except ImportError as err:
                raise ValueError(
                    f"{len(files)} video files under {self.root} need PyAV (pip install av); or give folders of frames"
                ) from err
            for f in files:
                self.videos.append(("file", f, None, 0.0))
        if not self.videos:
            raise ValueError(f"no videos (folders of >= 2 frames or video files) under {self.root}")

    def _folder_fps(self, d: Path) -> float:
        txt = d / "fps.txt"
        if txt.exists():
            return float(txt.read_text().strip())
        if self.fps is None:
            raise ValueError(f"frame rate of {d} unknown: add fps.txt or pass fps=")
        return float(self.fps)

    def _pair_frames(self, rng: np.random.Generator, video) -> np.ndarray | None:
        kind, path, frames, rate = video
        if kind == "frames":
            gap = max(1, int(round(self.gap_ms * rate / 1000)))
            if len(frames) <= gap:
                return None
            i = int(rng.integers(0, len(frames) - gap))
            return np.stack([read_rgb(frames[j]) for j in (i, i + gap)])
        import av

        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            dur = float(stream.duration * stream.time_base) if stream.duration else float(container.duration or 0) / 1e6
            if dur * 1000 <= self.gap_ms:
                return None
            t0 = rng.uniform(0, dur - self.gap_ms / 1000)
            out = []
            for t in (t0, t0 + self.gap_ms / 1000):
                container.seek(int(t / stream.time_base), stream=stream, any_frame=False, backward=True)
                frame = None
                for fr in container.decode(stream):
                    if fr.time is not None and fr.time >= t - 1e-6:
                        frame = fr
                        break
                if frame is None:  # t lies after the last frame: draw another start
                    return None
                out.append(frame.to_ndarray(format="rgb24"))
            return np.stack(out)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One pair, float32 ``(2, 3, size, size)`` in [0, 1]."""
        import torch

        for _ in range(20):
            pair = self._pair_frames(rng, self.videos[int(rng.integers(len(self.videos)))])
            if pair is not None:
                break
        else:
            raise ValueError(f"no video under {self.root} is longer than the frame gap {self.gap_ms} ms")
        h, w = pair.shape[1:3]
        side = int(min(h, w) * rng.choice([1.0, 0.875, 0.75, 0.66]))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = channels_first(pair[:, y : y + side, x : x + side].astype(np.float32) / 255)
        crop = resize_images(torch.from_numpy(crop), self.size)
        if rng.uniform() < 0.5:
            crop = crop.flip(-1)
        return crop.clamp(0, 1).numpy()

    def batches(self, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
        """Endless batches ``(B, 2, 3, size, size)``."""
        while True:
            yield np.stack([self.sample(rng) for _ in range(batch_size)])
