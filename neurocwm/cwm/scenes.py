"""Generated two-frame training videos with exact ground truth (flow, object ids, occlusion).

The default data (this project's own) is generated on the fly from a seed: a textured background seen
by a translating camera and 1-3 textured objects (rectangles, ellipses, and "glued" pairs of two
differently coloured shapes that share one rigid motion), each moving rigidly (translation,
optional rotation and scale). Every scene is a stack of layers with an analytic 2-D affine pose per
frame, so the forward flow of every frame-0 pixel, its object id and whether it is occluded in
frame 1 are exact, and :meth:`Scene.render` evaluates either frame at any continuous point.

Textures are colour sinusoids plus blurred white noise, never periodic patterns (periodic textures
alias and smooth ones make flow ill-posed: the aperture problem). The default is motion-heavy: every
object moves at least ``min_motion`` px and the camera moves in half of the scenes.

Real videos are read by :class:`neurocwm.cwm.video_files.VideoFolder`; :mod:`neurocwm.cwm.video`
re-exports both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from neurocwm.images import channels_first

__all__ = ["SceneConfig", "Scene", "make_scene", "make_pair", "SyntheticVideos"]


@dataclass(frozen=True)
class SceneConfig:
    """Parameters of the synthetic two-frame videos.

    Parameters
    ----------
    size : int
        Frame side in px.
    max_motion : float
        Largest object translation between the frames (px, before camera motion).
    min_motion : float
        Smallest object translation (px); every object moves at least this much.
    n_objects : tuple of int
        Inclusive range of the number of objects (a glued pair counts as one object).
    camera_prob : float
        Probability that the camera translates.
    max_camera : float or None
        Largest camera translation (px); ``None`` means ``max_motion / 2``.
    glued_prob : float
        Probability that an object is a glued pair of two differently coloured shapes.
    affine_prob : float
        Probability that an object also rotates and scales.
    max_rotation_deg : float
        Largest rotation between frames.
    scale_range : tuple of float
        Range of the frame-1 / frame-0 scale ratio.
    object_size : tuple of float
        Range of object extents as fractions of ``size``.
    noise_sigma, noise_contrast : float
        Blur (px) and standard deviation of the texture noise.
    camera_quantum : float or None
        Round the camera translation to multiples of this many px along each axis (e.g. the patch
        size, so that frame-1 patches of the background are exact frame-0 patches: the easiest
        case for a curriculum or a diagnostic); ``None`` keeps it continuous.
    spot_density : float
        Mean number of small grey-level spots painted into every texture per 100 px² (Gaussian
        bumps of ``spot_sigma`` px and height +-``spot_amplitude``, the same in the three
        channels). Spots are part of the surface, so they move with it; they put marks like the
        readout's tracer (a bump added to frame 0) into the training distribution. 0 (default)
        draws nothing from the generator, so scenes are exactly those without the option.
    spot_sigma, spot_amplitude : tuple of float
        Ranges (uniform) of the spots' width (px) and of the absolute value of their height.
    """

    size: int = 64
    max_motion: float = 5.0
    min_motion: float = 1.0
    n_objects: tuple[int, int] = (2, 3)
    camera_prob: float = 0.5
    max_camera: float | None = None
    glued_prob: float = 0.3
    affine_prob: float = 0.5
    max_rotation_deg: float = 10.0
    scale_range: tuple[float, float] = (0.9, 1.1)
    object_size: tuple[float, float] = (1 / 6, 1 / 2.5)
    noise_sigma: float = 0.8
    noise_contrast: float = 0.18
    camera_quantum: float | None = None
    spot_density: float = 0.0
    spot_sigma: tuple[float, float] = (0.8, 2.0)
    spot_amplitude: tuple[float, float] = (0.3, 0.8)

    def __post_init__(self) -> None:
        if self.spot_density < 0:
            raise ValueError(f"spot_density must be >= 0, got {self.spot_density}")
        if not (0 < self.spot_sigma[0] <= self.spot_sigma[1] and 0 <= self.spot_amplitude[0] <= self.spot_amplitude[1]):
            raise ValueError(
                f"spot_sigma must be positive and ordered and spot_amplitude ordered, "
                f"got {self.spot_sigma}, {self.spot_amplitude}"
            )
        if self.camera_quantum is not None and self.camera_quantum <= 0:
            raise ValueError(f"camera_quantum must be > 0, got {self.camera_quantum}")
        if self.size < 8:
            raise ValueError(f"size must be >= 8, got {self.size}")
        if not 0 <= self.min_motion <= self.max_motion:
            raise ValueError(f"need 0 <= min_motion <= max_motion, got {self.min_motion}, {self.max_motion}")
        lo, hi = self.n_objects
        if not 0 <= lo <= hi:
            raise ValueError(f"n_objects must be a range (lo, hi) with 0 <= lo <= hi, got {self.n_objects}")
        for name in ("camera_prob", "glued_prob", "affine_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a probability, got {getattr(self, name)}")
        if not 0 < self.scale_range[0] <= self.scale_range[1]:
            raise ValueError(f"scale_range must be positive and ordered, got {self.scale_range}")
        if not 0 < self.object_size[0] <= self.object_size[1] < 1:
            raise ValueError(f"object_size must be fractions in (0, 1), got {self.object_size}")

    @property
    def camera(self) -> float:
        return self.max_motion / 2 if self.max_camera is None else self.max_camera


# ----------------------------------------------------------------------------- textures
def _texture(rng: np.random.Generator, h: int, w: int, base: np.ndarray, cfg: SceneConfig) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    tex = np.empty((h, w, 3), np.float32)
    theta = rng.uniform(0, np.pi)
    freq = rng.uniform(0.04, 0.15)
    phase = rng.uniform(0, 2 * np.pi, size=3)
    amp = rng.uniform(0.05, 0.2, size=3)
    wave = 2 * np.pi * freq * (xx * np.cos(theta) + yy * np.sin(theta))
    for c in range(3):
        noise = ndimage.gaussian_filter(rng.standard_normal((h, w)).astype(np.float32), cfg.noise_sigma)
        noise *= cfg.noise_contrast / max(float(noise.std()), 1e-6)
        tex[..., c] = base[c] + amp[c] * np.sin(wave + phase[c]) + noise
    if cfg.spot_density > 0:
        tex += _spots(rng, h, w, cfg)[..., None]
    return np.clip(tex, 0.0, 1.0)


def _spots(rng: np.random.Generator, h: int, w: int, cfg: SceneConfig) -> np.ndarray:
    """Sum of ``Poisson(spot_density * h * w / 100)`` signed Gaussian spots on an (h, w) grid."""
    n = int(rng.poisson(cfg.spot_density * h * w / 100.0))
    if n == 0:
        return np.zeros((h, w), np.float32)
    cy, cx = rng.uniform(0, h, n), rng.uniform(0, w, n)
    sig = rng.uniform(*cfg.spot_sigma, n)
    height = rng.uniform(*cfg.spot_amplitude, n) * rng.choice([-1.0, 1.0], n)
    gy = np.exp(-((np.arange(h)[None] - cy[:, None]) ** 2) / (2 * sig[:, None] ** 2))
    gx = np.exp(-((np.arange(w)[None] - cx[:, None]) ** 2) / (2 * sig[:, None] ** 2))
    return np.einsum("n,ny,nx->yx", height, gy, gx).astype(np.float32)


def _colour(rng: np.random.Generator, hue: float | None = None) -> np.ndarray:
    hue = rng.uniform(0, 1) if hue is None else hue % 1.0
    sat, val = rng.uniform(0.5, 0.9), rng.uniform(0.45, 0.8)
    k = (np.array([5.0, 3.0, 1.0]) + hue * 6) % 6
    return (val - val * sat * np.clip(np.minimum(k, 4 - k), 0, 1)).astype(np.float32)


# ----------------------------------------------------------------------------- scene
@dataclass
class _Part:
    kind: str  # "rect" | "ellipse"
    centre: np.ndarray  # local coords (x, y)
    half: np.ndarray  # half extents (x, y)
    texture: np.ndarray  # (T, T, 3)
    offset: float  # texture coordinate of local 0

    def inside(self, u: np.ndarray) -> np.ndarray:
        d = (u - self.centre) / self.half
        if self.kind == "rect":
            return (np.abs(d) <= 1).all(-1)
        return (d**2).sum(-1) <= 1

    def colour(self, u: np.ndarray) -> np.ndarray:
        coords = [u[:, 1] + self.offset, u[:, 0] + self.offset]
        return np.stack(
            [ndimage.map_coordinates(self.texture[..., c], coords, order=1, mode="reflect") for c in range(3)], -1
        )


@dataclass
class _Layer:
    parts: list[_Part]
    A: list[np.ndarray]  # per frame: local -> image linear part
    b: list[np.ndarray]  # per frame: translation
    object_id: int
    background: bool = False

    def to_local(self, t: int, x: np.ndarray) -> np.ndarray:
        return (x - self.b[t]) @ np.linalg.inv(self.A[t]).T

    def to_image(self, t: int, u: np.ndarray) -> np.ndarray:
        return u @ self.A[t].T + self.b[t]

    def inside(self, u: np.ndarray) -> np.ndarray:
        if self.background:
            return np.ones(len(u), bool)
        m = np.zeros(len(u), bool)
        for p in self.parts:
            m |= p.inside(u)
        return m

    def colour(self, u: np.ndarray) -> np.ndarray:
        if len(self.parts) == 1:
            return self.parts[0].colour(u)
        out = self.parts[0].colour(u)
        for p in self.parts[1:]:  # later parts are drawn on top
            sel = p.inside(u)
            if sel.any():
                out[sel] = p.colour(u[sel])
        return out


@dataclass
class Scene:
    """A two-frame scene of affine layers (background first, top layer last).

    Use :meth:`render` to draw frame ``t`` at arbitrary points and :meth:`ground_truth` for the
    rasterised frames with exact flow, ids and occlusion.
    """

    size: int
    layers: list[_Layer] = field(default_factory=list)
    camera: np.ndarray = field(default_factory=lambda: np.zeros(2))

    def top_layer(self, t: int, xy: np.ndarray) -> np.ndarray:
        """Index of the top layer covering each point ``xy`` (shape (M, 2), (x, y) px) in frame ``t``."""
        top = np.zeros(len(xy), np.int64)
        for i, layer in enumerate(self.layers):
            if i == 0:
                continue
            top[layer.inside(layer.to_local(t, xy))] = i
        return top

    def render(self, t: int, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Colours ``(M, 3)`` and top-layer indices ``(M,)`` of frame ``t`` at points ``xy`` ((x, y) px)."""
        if t not in (0, 1):
            raise ValueError(f"frame index must be 0 or 1, got {t}")
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        top = self.top_layer(t, xy)
        out = np.empty((len(xy), 3), np.float32)
        for i, layer in enumerate(self.layers):
            sel = top == i
            if sel.any():
                out[sel] = layer.colour(layer.to_local(t, xy[sel]))
        return out, top

    def ground_truth(self) -> dict[str, np.ndarray]:
        """Rasterised frames and exact ground truth.

        Returns
        -------
        dict with
            ``frames`` float32 (2, H, W, 3) in [0, 1]; ``flow`` float32 (H, W, 2), forward flow
            (dx, dy) of every frame-0 pixel; ``ids`` int16 (H, W), object id of frame 0 (0 =
            background; the two shapes of a glued pair share one id); ``occluded`` bool (H, W),
            the frame-0 point is covered by another layer in frame 1 or leaves the frame;
            ``ids1`` int16 (H, W), object id of frame 1; ``motion`` float32 (n_objects + 1, 2),
            translation of each object's centre (row 0: background).
        """
        s = self.size
        yy, xx = np.mgrid[0:s, 0:s]
        xy = np.stack([xx.ravel(), yy.ravel()], -1).astype(np.float64)
        f0, top0 = self.render(0, xy)
        f1, top1 = self.render(1, xy)
        dest = np.empty_like(xy)
        for i, layer in enumerate(self.layers):
            sel = top0 == i
            if sel.any():
                dest[sel] = layer.to_image(1, layer.to_local(0, xy[sel]))
        flow = dest - xy
        out = ((dest < 0) | (dest > s - 1)).any(-1)
        occ = out | (self.top_layer(1, dest) != top0)
        ids = np.array([layer.object_id for layer in self.layers], np.int16)
        motion = np.array([layer.b[1] - layer.b[0] for layer in self.layers], np.float32)
        return {
            "frames": np.stack([f0, f1]).reshape(2, s, s, 3),
            "flow": flow.reshape(s, s, 2).astype(np.float32),
            "ids": ids[top0].reshape(s, s),
            "ids1": ids[top1].reshape(s, s),
            "occluded": occ.reshape(s, s),
            "motion": motion,
        }


def _rot(theta: float, scale: float = 1.0) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return scale * np.array([[c, -s], [s, c]])


def _random_unit(rng: np.random.Generator) -> np.ndarray:
    a = rng.uniform(0, 2 * np.pi)
    return np.array([math.cos(a), math.sin(a)])


def make_scene(rng: np.random.Generator, cfg: SceneConfig = SceneConfig()) -> Scene:
    """Draw one random scene.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness.
    cfg : SceneConfig

    Returns
    -------
    Scene
    """
    s = cfg.size
    cam = np.zeros(2)
    if rng.uniform() < cfg.camera_prob and cfg.camera > 0:
        cam = _random_unit(rng) * rng.uniform(0.5 * cfg.camera, cfg.camera)
        if cfg.camera_quantum is not None:
            q = cfg.camera_quantum
            cam = np.round(cam / q) * q
            if not cam.any():  # keep the camera moving: one quantum along the larger axis
                axis = int(rng.integers(2))
                cam[axis] = q * (1 if rng.uniform() < 0.5 else -1)
    pad = int(math.ceil(max(cfg.camera, float(np.abs(cam).max())))) + 4
    bg_tex = _texture(rng, s + 2 * pad, s + 2 * pad, _colour(rng), cfg)
    eye = np.eye(2)
    # camera moves by cam -> the world moves by -cam in the image
    layers = [
        _Layer(
            [_Part("rect", np.zeros(2), np.full(2, s), bg_tex, float(pad))], [eye, eye], [np.zeros(2), -cam], 0, True
        )
    ]
    n_obj = int(rng.integers(cfg.n_objects[0], cfg.n_objects[1] + 1))
    for k in range(1, n_obj + 1):
        extent = rng.uniform(*cfg.object_size) * s
        hue = rng.uniform()
        if rng.uniform() < cfg.glued_prob:
            ha = np.array([rng.uniform(0.25, 0.4), rng.uniform(0.3, 0.5)]) * extent
            hb = np.array([rng.uniform(0.25, 0.4), rng.uniform(0.3, 0.5)]) * extent
            ca = np.array([-hb[0] * 0.9, rng.uniform(-0.2, 0.2) * extent])
            cb = np.array([ha[0] * 0.9, rng.uniform(-0.2, 0.2) * extent])
            specs = [
                (rng.choice(["rect", "ellipse"]), ca, ha, hue),
                (rng.choice(["rect", "ellipse"]), cb, hb, hue + rng.uniform(0.3, 0.7)),
            ]
        else:
            half = np.array([rng.uniform(0.3, 0.5), rng.uniform(0.3, 0.5)]) * extent
            specs = [(rng.choice(["rect", "ellipse"]), np.zeros(2), half, hue)]
        parts = []
        for kind, centre, half, h in specs:
            reach = float(np.abs(centre).max() + half.max()) * 1.5 + 4
            tsize = int(2 * reach)
            parts.append(_Part(str(kind), centre, half, _texture(rng, tsize, tsize, _colour(rng, h), cfg), reach))
        theta0 = rng.uniform(0, 2 * np.pi)
        dtheta, scale = 0.0, 1.0
        if rng.uniform() < cfg.affine_prob:
            dtheta = math.radians(rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg))
            scale = rng.uniform(*cfg.scale_range)
        centre0 = rng.uniform(0.15 * s, 0.85 * s, size=2)
        move = _random_unit(rng) * rng.uniform(cfg.min_motion, cfg.max_motion)
        layers.append(_Layer(parts, [_rot(theta0), _rot(theta0 + dtheta, scale)], [centre0, centre0 + move - cam], k))
    return Scene(s, layers, cam)


def make_pair(
    seed: int | np.random.Generator | np.random.SeedSequence, cfg: SceneConfig = SceneConfig()
) -> dict[str, np.ndarray]:
    """Generate one two-frame video with exact ground truth (see :meth:`Scene.ground_truth`)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return make_scene(rng, cfg).ground_truth()


class SyntheticVideos:
    """Seeded, indexable stream of synthetic two-frame videos.

    Parameters
    ----------
    cfg : SceneConfig, optional
    seed : int, default=0
        Item ``i`` is generated from ``SeedSequence([seed, i])``, so any item can be regenerated.

    Examples
    --------
    >>> data = SyntheticVideos(SceneConfig(size=32), seed=3)
    >>> data[0]["frames"].shape
    (2, 32, 32, 3)
    """

    def __init__(self, cfg: SceneConfig | None = None, seed: int = 0) -> None:
        self.cfg = cfg or SceneConfig()
        self.seed = int(seed)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        if index < 0:
            raise ValueError(f"index must be >= 0, got {index}")
        return make_pair(np.random.SeedSequence([self.seed, int(index)]), self.cfg)

    def batch(self, indices) -> dict[str, np.ndarray]:
        """Stack several items; ``frames`` becomes (B, 2, 3, H, W) float32 (channels first)."""
        items = [self[i] for i in indices]
        out = {k: np.stack([it[k] for it in items]) for k in ("frames", "flow", "ids", "ids1", "occluded")}
        out["frames"] = channels_first(out["frames"])
        return out
