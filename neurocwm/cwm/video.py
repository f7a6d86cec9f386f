"""Two-frame training videos: the generator with exact ground truth (:mod:`neurocwm.cwm.scenes`) and
the reader of real videos (:mod:`neurocwm.cwm.video_files`), re-exported under their old path."""

from __future__ import annotations

from .scenes import (
    Scene,
    SceneConfig,
    SyntheticVideos,
    _spots,  # noqa: F401 (re-exported for its test)
    make_pair,
    make_scene,
)
from .video_files import VideoFolder

__all__ = ["SceneConfig", "Scene", "make_scene", "make_pair", "SyntheticVideos", "VideoFolder"]
