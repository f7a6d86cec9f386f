"""TAP-Vid point tracking: the benchmark's metrics, its files, and tracking with a CWM.

Doersch C., Gupta A., Markeeva L., et al. (2022), "TAP-Vid: A Benchmark for Tracking Any Point in
a Video", NeurIPS Datasets and Benchmarks (§4, "Metrics"). Coordinates are pixels of the video
resized to 256 x 256; the "query first" protocol queries each point at the first frame where it is
visible and scores every later frame. For thresholds delta in {1, 2, 4, 8, 16} px:

* ``<delta^x``: among frames where the point is truly visible, the fraction of predictions within
  delta (squared distance < delta^2), whatever visibility is predicted; ``<delta^x_avg`` is the mean;
* Jaccard at delta: TP / (TP + FP + FN), TP = truly visible, predicted visible and within delta;
  FP = predicted visible but truly occluded or farther than delta; TP + FN = truly visible;
  AJ (average Jaccard) is the mean over the thresholds;
* OA: fraction of scored frames whose predicted occlusion equals the truth.

Each video is scored on its own and the benchmark reports the mean over videos.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from neurocwm.images import channels_first, read_rgb

__all__ = [
    "THRESHOLDS",
    "RESOLUTION",
    "compute_metrics",
    "average_metrics",
    "sample_queries_first",
    "load_tapvid",
    "track_queries",
    "evaluate_tapvid",
]

THRESHOLDS = (1, 2, 4, 8, 16)
RESOLUTION = 256


def compute_metrics(
    query_points, gt_occluded, gt_tracks, pred_occluded, pred_tracks, query_mode: str = "first"
) -> dict:
    """TAP-Vid metrics of one video (Doersch et al. 2022, §4).

    Parameters
    ----------
    query_points : array, shape (Q, 3)
        (t, y, x) of each query; only ``t`` is used (which frames are scored).
    gt_occluded, pred_occluded : array of bool, shape (Q, T)
    gt_tracks, pred_tracks : array, shape (Q, T, 2)
        (x, y) pixels at 256 x 256.
    query_mode : {"first", "strided"}
        "first": score the frames after the query frame; "strided": every frame but the query frame.

    Returns
    -------
    dict
        ``occlusion_accuracy``, ``pts_within_<d>`` and ``jaccard_<d>`` for each threshold,
        ``average_jaccard`` and ``average_pts_within_thresh`` (floats; NaN where a denominator
        is 0, e.g. no visible point).
    """
    qp = np.asarray(query_points, np.float64)
    gocc = np.asarray(gt_occluded, bool)
    pocc = np.asarray(pred_occluded, bool)
    gtr = np.asarray(gt_tracks, np.float64)
    ptr = np.asarray(pred_tracks, np.float64)
    q, t = gocc.shape
    if qp.shape != (q, 3) or pocc.shape != (q, t) or gtr.shape != (q, t, 2) or ptr.shape != (q, t, 2):
        raise ValueError(
            f"shapes do not agree: query_points {qp.shape} (want ({q}, 3)), "
            f"occluded {gocc.shape} / {pocc.shape}, "
            f"tracks {gtr.shape} / {ptr.shape} (want ({q}, {t}, 2))"
        )
    eye = np.eye(t, dtype=np.int32)
    if query_mode == "first":
        table = np.cumsum(eye, axis=1) - eye  # row q: frames after q
    elif query_mode == "strided":
        table = 1 - eye
    else:
        raise ValueError(f"query_mode must be 'first' or 'strided', got {query_mode!r}")
    qf = np.round(qp[:, 0]).astype(np.int64)
    if q and (qf.min() < 0 or qf.max() >= t):
        raise ValueError(f"query frames must lie in [0, {t}), got {qf.min()}..{qf.max()}")
    scored = table[qf] > 0
    out: dict[str, float] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        out["occlusion_accuracy"] = float(np.sum((pocc == gocc) & scored) / np.sum(scored))
        vis, pvis = ~gocc, ~pocc
        within_all, jac_all = [], []
        for d in THRESHOLDS:
            within = np.sum((ptr - gtr) ** 2, axis=-1) < d * d
            correct = within & vis
            frac = np.sum(correct & scored) / np.sum(vis & scored)
            tp = np.sum(correct & pvis & scored)
            fp = np.sum(((~vis & pvis) | (~within & pvis)) & scored)
            jac = tp / (np.sum(vis & scored) + fp)
            out[f"pts_within_{d}"], out[f"jaccard_{d}"] = float(frac), float(jac)
            within_all.append(frac)
            jac_all.append(jac)
        out["average_jaccard"] = float(np.mean(jac_all))
        out["average_pts_within_thresh"] = float(np.mean(within_all))
    return out


def average_metrics(per_video: list[dict]) -> dict:
    """Mean of each metric over videos (NaNs ignored, as a video without visible points has none)."""
    if not per_video:
        return {}
    keys = per_video[0].keys()
    with np.errstate(invalid="ignore"), __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore", RuntimeWarning)
        return {k: float(np.nanmean([m[k] for m in per_video])) for k in keys}


def sample_queries_first(occluded, points) -> dict:
    """TAP-Vid's query-first sampling: drop never-visible points, query each at its first visible frame.

    Parameters
    ----------
    occluded : array of bool, shape (Q, T)
    points : array, shape (Q, T, 2)
        (x, y) pixels.

    Returns
    -------
    dict
        ``query_points`` (Q', 3) as (t, y, x), ``target_points`` (Q', T, 2), ``occluded`` (Q', T).
    """
    occ = np.asarray(occluded, bool)
    pts = np.asarray(points, np.float32)
    keep = (~occ).sum(1) > 0
    occ, pts = occ[keep], pts[keep]
    first = np.argmax(~occ, axis=1)
    qp = np.stack([first, pts[np.arange(len(pts)), first, 1], pts[np.arange(len(pts)), first, 0]], 1).astype(np.float32)
    return {"query_points": qp.reshape(-1, 3), "target_points": pts, "occluded": occ}


# ----------------------------------------------------------------------------- files
class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays, dtypes and scalars and nothing else (built-in containers, strings and
    bytes need no class). Anything else in the pickle is refused before it is called."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),  # protocol-2 pickles store array bytes as latin-1 text
    }

    def find_class(self, module: str, name: str):
        # safe: only numpy's array/dtype/scalar reconstructors and codecs.encode are admitted;
        # they build data and run no code
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refused global {module}.{name} (only numpy arrays and built-in containers are read)"
        )


def _resize_video(video: np.ndarray, size: int = RESOLUTION) -> np.ndarray:
    """Frames (T, H, W, 3) to float32 (T, size, size, 3) in [0, 1], resized frame by frame with
    PIL's Lanczos filter on uint8, as TAP-Vid's own loaders resize the frames to 256 x 256 (through
    mediapy's ``resize_video``)."""
    from PIL import Image

    v = np.asarray(video)
    if v.ndim != 4 or v.shape[-1] != 3:
        raise ValueError(f"video must have shape (T, H, W, 3), got {v.shape}")
    if v.dtype != np.uint8:
        v8 = np.clip(np.asarray(v, np.float64) * (255.0 if v.max() <= 1.0 else 1.0), 0, 255).round().astype(np.uint8)
    else:
        v8 = v
    if v8.shape[1:3] == (size, size):
        return v8.astype(np.float32) / 255.0
    frames = [np.asarray(Image.fromarray(f).resize((size, size), Image.LANCZOS)) for f in v8]
    return np.stack(frames).astype(np.float32) / 255.0


def _decode_frames(video) -> np.ndarray:
    if isinstance(video, (list, tuple)) and video and isinstance(video[0], (bytes, bytearray)):
        return np.stack([read_rgb(b, name=f"frame {i} of a TAP-Vid video") for i, b in enumerate(video)])
    return np.asarray(video)


def load_tapvid(path: str | Path, max_videos: int | None = None) -> list[dict]:
    """Read TAP-Vid query-first evaluation data, resized to 256 x 256.

    Coordinates follow TAP-Vid: normalised positions times 256, so pixel i spans [i, i + 1).

    Parameters
    ----------
    path : str or Path
        A TAP-Vid pickle (``tapvid_davis.pkl``: a dict of videos, or ``tapvid_kinetics``/RGB-stacking
        style: a list) of dicts with ``video`` (T, H, W, 3) uint8 (or a list of JPEG bytes),
        ``points`` (Q, T, 2) (x, y) in [0, 1] and ``occluded`` (Q, T); read with an unpickler that
        admits only numpy arrays and built-in containers. Or an ``.npz`` of one video: ``video``
        (T, H, W, 3), ``query_points`` (Q, 3) (t, y, x), ``target_points`` (Q, T, 2) (x, y) and
        ``occluded`` (Q, T), coordinates in pixels of the stored video.
    max_videos : int, optional
        Keep the first videos only.

    Returns
    -------
    list of dict
        ``name``, ``video`` (T, 256, 256, 3) float32 in [0, 1], ``query_points`` (Q, 3),
        ``target_points`` (Q, T, 2), ``occluded`` (Q, T), coordinates in 256-px pixels.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no TAP-Vid file at {path}")
    out = []
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = {"video", "query_points", "target_points", "occluded"} - set(z.files)
                if missing:
                    raise ValueError(
                        f"{path} lacks {sorted(missing)} (needs video, query_points, target_points, occluded)"
                    )
                video, qp = z["video"], z["query_points"].astype(np.float32)
                tp, occ = z["target_points"].astype(np.float32), z["occluded"].astype(bool)
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read {path}: {exc}") from None
        t, h, w = video.shape[:3]
        if qp.ndim != 2 or qp.shape[1] != 3 or tp.shape != (len(qp), t, 2) or occ.shape != (len(qp), t):
            raise ValueError(
                f"{path}: query_points {qp.shape}, target_points {tp.shape}, occluded {occ.shape} "
                "do not fit "
                f"{len(qp)} queries over {t} frames"
            )
        sx, sy = RESOLUTION / w, RESOLUTION / h
        qp = qp * np.array([1, sy, sx], np.float32)
        tp = tp * np.array([sx, sy], np.float32)
        return [
            {"name": path.stem, "video": _resize_video(video), "query_points": qp, "target_points": tp, "occluded": occ}
        ]
    try:
        with open(path, "rb") as fh:
            data = _NumpyOnlyUnpickler(fh).load()
    except pickle.UnpicklingError as exc:
        raise ValueError(f"refused to read {path}: {exc}") from None
    except (EOFError, OSError, AttributeError, ImportError, IndexError, TypeError) as exc:
        raise ValueError(f"cannot read {path} as a TAP-Vid pickle ({type(exc).__name__}: {exc})") from None
    items = list(data.items()) if isinstance(data, dict) else list(enumerate(data)) if isinstance(data, list) else None
    if items is None:
        raise ValueError(f"{path} holds a {type(data).__name__}, not a dict or list of videos")
    for name, item in items[: max_videos if max_videos else None]:
        if not isinstance(item, dict) or not {"video", "points", "occluded"} <= set(item):
            raise ValueError(f"{path}: video {name!r} lacks video/points/occluded")
        frames = _decode_frames(item["video"])
        pts = np.asarray(item["points"], np.float32) * np.array([RESOLUTION, RESOLUTION], np.float32)
        q = sample_queries_first(item["occluded"], pts)
        out.append({"name": str(name), "video": _resize_video(frames), **q})
    return out


# ----------------------------------------------------------------------------- tracking
def track_queries(
    model,
    video: np.ndarray,
    query_points: np.ndarray,
    *,
    occlusion_threshold: float = 0.1,
    progress: bool = False,
    **tracer_kwargs,
) -> tuple[np.ndarray, np.ndarray]:
    """Track query points through a video with a CWM's tracer flow, query frame to each later frame.

    As the Opt-CWM evaluation does for the "first" protocol (Stojanov et al. 2025), each later
    frame t is paired directly with the query frame (a 2-frame prediction of frame t from the
    query frame), all queries of one query frame in one batched call. Frames are resized from 256
    px to the model's size (bilinear) and positions scaled back.

    Parameters
    ----------
    model : predictor (see :mod:`neurocwm.cwm.readouts`)
    video : array, shape (T, 256, 256, 3), float in [0, 1]
    query_points : array, shape (Q, 3)
        (t, y, x) in 256-px pixels.
    occlusion_threshold : float
        Tracer visibility below which a point is called occluded.
    **tracer_kwargs
        Passed to :func:`neurocwm.cwm.readouts.tracer_flow`.

    Returns
    -------
    tracks : array, shape (Q, T, 2)
        (x, y) at 256 px; the query position at and before the query frame.
    occluded : array of bool, shape (Q, T)
    """
    import torch
    import torch.nn.functional as F

    from neurocwm.progress import progress_bar as tqdm

    from .readouts import occlusion_from_tracer, tracer_flow

    v = torch.from_numpy(channels_first(np.asarray(video, np.float32)))
    t_len, res = v.shape[0], v.shape[-1]
    s = model.image_size
    frames = F.interpolate(v, size=(s, s), mode="bilinear", align_corners=False, antialias=True) if res != s else v
    scale = s / res
    qp = np.asarray(query_points, np.float32)
    q = len(qp)
    tracks = np.repeat(qp[:, None, [2, 1]], t_len, axis=1).astype(np.float32)
    occ = np.zeros((q, t_len), bool)
    qf = np.round(qp[:, 0]).astype(int)
    pairs = [(f, t) for f in sorted(set(qf.tolist())) for t in range(f + 1, t_len)]
    for f, t in tqdm(pairs, desc="tapvid pairs", disable=not progress):
        idx = np.flatnonzero(qf == f)
        # TAP-Vid's pixel i spans [i, i + 1); ours is centred on i
        xy = np.clip(qp[idx][:, [2, 1]] * scale - 0.5, 0, s - 1)
        res_ = tracer_flow(model, torch.stack([frames[f], frames[t]]), xy, **tracer_kwargs)
        dest = (xy + res_.flow_argmax.numpy() + 0.5) / scale
        tracks[idx, t] = dest
        occ[idx, t] = occlusion_from_tracer(res_, occlusion_threshold).numpy()
    return tracks, occ


def evaluate_tapvid(
    model,
    videos: list[dict],
    *,
    occlusion_threshold: float = 0.1,
    progress: bool = False,
    on_video=None,
    **tracer_kwargs,
) -> tuple[list[dict], dict]:
    """TAP-Vid metrics (Doersch et al. 2022) of :func:`track_queries` on each video, and their mean.

    Parameters
    ----------
    model : predictor (see :mod:`neurocwm.cwm.readouts`)
    videos : list of dict
        As :func:`load_tapvid` returns them: ``name``, ``video`` (T, 256, 256, 3), ``query_points``
        (Q, 3), ``target_points`` (Q, T, 2), ``occluded`` (Q, T).
    occlusion_threshold : float, default=0.1
    progress : bool, default=False
    on_video : callable, optional
        Called with each video's record as soon as it is scored (e.g. to print it).
    **tracer_kwargs
        Passed to :func:`neurocwm.cwm.readouts.tracer_flow`.

    Returns
    -------
    per_video : list of dict
        ``name``, ``n_queries``, ``n_frames`` and the metrics of :func:`compute_metrics`.
    mean : dict
        :func:`average_metrics` of the float metrics over the videos.
    """
    per_video = []
    for v in videos:
        tracks, occ = track_queries(
            model,
            v["video"],
            v["query_points"],
            occlusion_threshold=occlusion_threshold,
            progress=progress,
            **tracer_kwargs,
        )
        m = compute_metrics(v["query_points"], v["occluded"], v["target_points"], occ, tracks)
        record = {
            "name": v["name"],
            "n_queries": int(len(v["query_points"])),
            "n_frames": int(v["video"].shape[0]),
            **m,
        }
        per_video.append(record)
        if on_video is not None:
            on_video(record)
    mean = average_metrics([{k: x for k, x in m.items() if isinstance(x, float)} for m in per_video])
    return per_video, mean
