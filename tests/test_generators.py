"""Procedural generators of neurocwm.data.generators: orientation energy as told, 1/f spectra, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import TINY

from neurocwm.data import GENERATORS, generate, image_batches
from neurocwm.data.generators import mixture, oriented_edges, oriented_textures, pink_noise


def _luminance(img: torch.Tensor) -> np.ndarray:
    return img.mean(dim=1).double().numpy()


def _power(img: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean power spectrum of the luminance (Hann-windowed), and the frequency grids (fy up), cycles/px."""
    lum = _luminance(img)
    n = lum.shape[-1]
    win = np.outer(np.hanning(n), np.hanning(n))
    lum = (lum - lum.mean(axis=(-2, -1), keepdims=True)) * win
    power = (np.abs(np.fft.fft2(lum)) ** 2).mean(axis=0)
    fy = -np.fft.fftfreq(n)[:, None] * np.ones((1, n))
    fx = np.fft.fftfreq(n)[None, :] * np.ones((n, 1))
    return power, fy, fx


def _stripe_orientation(img: torch.Tensor) -> tuple[float, float]:
    """Orientation (deg, [0, 180)) of the stripes / bars that carry the spectral energy, and the
    resultant length of the doubled angles (1 = every bit of energy at one orientation).

    A pattern whose stripes run at theta has its energy along the frequency direction theta + 90.
    """
    power, fy, fx = _power(img)
    f = np.hypot(fy, fx)
    keep = (f > 1.5 / power.shape[0]) & (f < 0.45)
    ang = np.arctan2(fy, fx)[keep]
    w = power[keep]
    z = np.sum(w * np.exp(2j * ang)) / np.sum(w)
    spectral = math.degrees(np.angle(z)) / 2
    return float((spectral - 90.0) % 180.0), float(np.abs(z))


def _axial_error(a: float, b: float) -> float:
    d = abs(a - b) % 180.0
    return min(d, 180.0 - d)


@pytest.mark.parametrize("orientation", [0.0, 30.0, 90.0, 135.0])
def test_oriented_edges_energy_at_the_told_orientation(orientation):
    imgs = oriented_edges(16, 64, seed=1, orientation_deg=orientation, background_noise=0.0)
    measured, strength = _stripe_orientation(imgs)
    assert _axial_error(measured, orientation) < 3.0, (measured, orientation)
    assert strength > 0.5  # strongly anisotropic


@pytest.mark.parametrize("orientation", [20.0, 110.0])
def test_oriented_textures_energy_at_the_told_orientation(orientation):
    imgs = oriented_textures(16, 64, seed=2, orientation_deg=orientation, n_regions=0)  # region borders are isotropic
    measured, strength = _stripe_orientation(imgs)
    assert _axial_error(measured, orientation) < 3.0, (measured, orientation)
    assert strength > 0.5


def test_uniform_orientations_are_isotropic():
    # a few large bars carry much of the power, so the resultant of a finite batch is not 0; seeds 0-3 give
    # 0.02-0.14 against > 0.5 when an orientation is told
    for fn in (oriented_edges, oriented_textures):
        _, strength = _stripe_orientation(fn(128, 48, seed=3))
        assert strength < 0.2, (fn.__name__, strength)
    # a told orientation with a 180-degree spread is uniform again
    spread = oriented_edges(128, 48, seed=3, orientation_deg=45.0, orientation_spread_deg=180.0)
    _, strength = _stripe_orientation(spread)
    assert strength < 0.2


def test_pink_noise_has_the_told_spectral_slope():
    for exponent in (1.0, 1.5):
        imgs = pink_noise(32, 64, seed=4, exponent=exponent, contrast=(0.05, 0.05))  # low contrast: no clipping
        power, fy, fx = _power(imgs)
        f = np.hypot(fy, fx)
        bins = np.geomspace(2 / 64, 0.4, 12)
        idx = np.digitize(f, bins)
        fc = np.array([f[idx == i].mean() for i in range(1, len(bins))])
        pc = np.array([power[idx == i].mean() for i in range(1, len(bins))])
        slope = np.polyfit(np.log(fc), np.log(pc), 1)[0]
        assert slope == pytest.approx(-2 * exponent, abs=0.15)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generators_are_seeded_and_in_range(name):
    a = generate(name, 6, 40, seed=7)
    b = generate(name, 6, 40, seed=7)
    c = generate(name, 6, 40, seed=8)
    assert a.shape == (6, 3, 40, 40) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert float(a.std()) > 0.02  # not blank


def test_mixture_draws_each_image_from_one_generator():
    only_pink = mixture(4, 32, seed=5, weights={"pink": 1.0})
    # with one generator the mixture is that generator at the seed the mixture derived for it
    g = torch.Generator().manual_seed(5)
    torch.multinomial(torch.tensor([1.0], dtype=torch.float64), 4, replacement=True, generator=g)
    s = int(torch.randint(0, 2**62, (1,), generator=g))
    assert torch.equal(only_pink, pink_noise(4, 32, seed=s))
    with pytest.raises(ValueError, match="unknown generator"):
        mixture(2, 32, weights={"noise": 1.0})
    with pytest.raises(ValueError, match="positive sum"):
        mixture(2, 32, weights={"pink": 0.0})


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown generator 'foo'"):
        generate("foo", 2, 32)
    with pytest.raises(ValueError, match="n_images >= 1 and size >= 8"):
        oriented_edges(0, 32)
    with pytest.raises(ValueError, match="sf_range"):
        oriented_textures(2, 32, sf_range=(0.1, 0.6))


def test_image_batches_use_the_generator():
    kw = dict(
        data=None, objective="simclr", batch_size=4, image_size=32, seed=0, device=torch.device("cpu"), total_steps=1
    )
    default = next(image_batches(**kw))
    dl = next(image_batches(**kw, generator="deadleaves"))
    edges = next(image_batches(**kw, generator="edges"))
    assert torch.equal(default["x1"], dl["x1"])  # dead leaves stays the default, unchanged
    assert edges["x1"].shape == dl["x1"].shape and not torch.equal(edges["x1"], dl["x1"])


def test_fit_trains_on_the_chosen_generator_and_records_it(tmp_path, capsys):
    from neurocwm.cli import main

    tiny = [*TINY, "--steps", "2"]
    out = tmp_path / "run"
    assert main(["fit", "--out", str(out), *tiny, "--generator", "edges"]) == 0
    import json

    assert json.loads((out / "config.json").read_text())["generator"] == "edges"
    assert main(["fit", "--out", str(tmp_path / "bad"), *tiny, "--generator", "noise"]) == 2  # one line, exit 2
    assert "invalid choice: 'noise'" in capsys.readouterr().err
    assert main(["fit", "--model", "cwm", "--out", str(tmp_path / "bad"), "--generator", "edges"]) == 2
    assert "--generator applies to --model tdann only" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_grey_textures_have_no_colour():
    x = generate("textures-grey", 4, 32, seed=0)
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])
    assert float(x.std()) > 0.05
