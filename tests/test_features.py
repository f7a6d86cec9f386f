"""neurocwm.features: mapped-layer responses, in memory and streamed to netCDF."""

import json

import numpy as np
import pytest
import torch
from conftest import TINY, fit_smoke_cwm

from neurocwm.cli import main
from neurocwm.features import forward_layers, layer_dims, layer_responses, open_responses, run_sheet
from neurocwm.runs import load_run
from topography.dimensionality import channel_max_pool


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("feat") / "run"
    assert main(["fit", "--out", str(out), *TINY, "--steps", "1"]) == 0
    return load_run(out)


def _images(n=10, size=32, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, 3, size, size)).astype(np.float32)


def test_responses_are_the_normalised_block_outputs(run):
    x = _images()
    resp = layer_responses(run, x, batch_size=3, progress=False)
    assert list(resp) == list(layer_dims(run))
    mean = torch.tensor([0.485, 0.456, 0.406])[None, :, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[None, :, None, None]
    with torch.no_grad():
        _, blocks = run.model((torch.from_numpy(x) - mean) / std)
    for name, (c, h, w) in layer_dims(run).items():
        assert resp[name].shape == (10, c * h * w)
        np.testing.assert_allclose(
            resp[name], blocks[name].reshape(10, -1).numpy(), rtol=1e-4, atol=1e-5
        )  # batch of 3 vs 10
    # C-major unit order, as the sheet's positions
    sheet = run_sheet(run)
    assert all(sheet[k].n_units == resp[k].shape[1] for k in resp)


def test_streamed_equals_in_memory_and_records_attrs(run, tmp_path):
    x = _images(12)
    mem = layer_responses(run, x, ["layer2.0", "layer4.1"], batch_size=5, progress=False)
    attrs = {"stimuli": "noise", "seed": 0}
    ds = layer_responses(
        run, x, ["layer2.0", "layer4.1"], batch_size=5, progress=False, path=tmp_path / "r.nc", attrs=attrs
    )
    for k in mem:
        np.testing.assert_array_equal(np.asarray(ds[k]), mem[k])
    assert json.loads(ds.attrs["neurocwm"])["stimuli"] == "noise"
    ds.close()
    again = open_responses(tmp_path / "r.nc")
    np.testing.assert_array_equal(np.asarray(again["layer4.1"][:, :7]), mem["layer4.1"][:, :7])  # lazy slice
    again.close()
    # over the memory bound: streamed to a temporary file, same values
    with pytest.warns(UserWarning, match="streaming"):
        big = layer_responses(run, x, ["layer2.0"], progress=False, max_memory_gb=1e-6)
    np.testing.assert_array_equal(np.asarray(big["layer2.0"]), mem["layer2.0"])
    big.close()
    assert not list(tmp_path.glob(".r.nc.*"))  # no temporary file left behind


def test_channel_max_pool_and_resizing(run):
    x = _images(6, size=64)
    pooled = layer_responses(run, x, pool="channel_max", progress=False)
    blocks = forward_layers(run, torch.from_numpy(x))
    for k, t in blocks.items():
        assert t.shape[-1] == layer_dims(run)[k][2]  # 64-px images were resized to the 32-px input
        np.testing.assert_allclose(pooled[k], channel_max_pool(t.numpy()), rtol=1e-6)


def test_trunk_stops_after_the_last_requested_layer_with_the_same_outputs(run, monkeypatch):
    """layer_responses runs a TDANN only as far as it needs; the responses are bit-identical."""
    x = _images(5)
    mean = torch.tensor([0.485, 0.456, 0.406])[None, :, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[None, :, None, None]
    with torch.no_grad():
        _, full = run.model((torch.from_numpy(x) - mean) / std)  # the whole network, same batch
    trunk = run.model.trunk
    seen = []
    for name in ("layer2.1", "layer3.0"):
        blk = trunk.get_submodule(name)
        # (layer_dims' one-image probe runs the whole network: count the 5-image batches only)
        monkeypatch.setattr(
            blk, "forward", lambda t, _f=blk.forward, _n=name: (len(t) == 5 and seen.append(_n)) or _f(t)
        )
    resp = layer_responses(run, x, ["layer2.0", "layer1.1"], batch_size=5, progress=False)
    assert seen == []  # nothing after layer2.0 ran
    for k in ("layer2.0", "layer1.1"):
        np.testing.assert_array_equal(resp[k], full[k].reshape(5, -1).numpy())
    pooled = layer_responses(run, x, ["layer4.1"], pool="channel_max", batch_size=5, progress=False)["layer4.1"]
    np.testing.assert_array_equal(pooled, full["layer4.1"].numpy().max(axis=(2, 3)))
    assert seen == ["layer2.1", "layer3.0"]
    blocks = trunk.forward_blocks((torch.from_numpy(x) - mean) / std)
    assert list(blocks) == list(full) and all(torch.equal(blocks[k], full[k]) for k in full)
    with pytest.raises(ValueError, match=r"no block\(s\) \['layer5.0'\]"):
        trunk.forward_blocks(torch.from_numpy(x), ["layer5.0"])


def test_bad_input(run, tmp_path):
    with pytest.raises(ValueError, match=r"\(n, 3, H, W\)"):
        layer_responses(run, np.zeros((2, 1, 32, 32), np.float32), progress=False)
    bad = _images(2)
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        layer_responses(run, bad, progress=False)
    with pytest.raises(ValueError, match="no layer"):
        layer_responses(run, _images(2), ["layer9"], progress=False)
    with pytest.raises(ValueError, match="no images"):
        layer_responses(run, _images(0), progress=False)
    with pytest.raises(ValueError, match="pool"):
        layer_responses(run, _images(2), pool="mean", progress=False)
    # a failure while streaming leaves no file
    with pytest.raises(ValueError):
        layer_responses(run, np.concatenate([_images(4), bad]), batch_size=2, path=tmp_path / "x.nc", progress=False)
    assert not list(tmp_path.iterdir())
    with pytest.raises(FileNotFoundError):
        open_responses(tmp_path / "none.nc")
    (tmp_path / "junk.nc").write_bytes(b"not netcdf")
    with pytest.raises(ValueError, match="not a readable"):
        open_responses(tmp_path / "junk.nc")


def test_cwm_units_are_the_mlp_hidden_units(tmp_path):
    out = tmp_path / "cwm"
    fit_smoke_cwm(out)
    run = load_run(out)
    x = _images(3)
    resp = layer_responses(run, x, ["encoder.1.mlp"], progress=False)
    ref = run.model.hidden_units(torch.from_numpy(x))["encoder.1.mlp"]
    np.testing.assert_allclose(resp["encoder.1.mlp"], ref.reshape(3, -1).numpy(), rtol=1e-5, atol=1e-6)
    sheet = run_sheet(run)
    assert sheet["encoder.1.mlp"].n_units == resp["encoder.1.mlp"].shape[1]
    assert [ly.area for ly in sheet] == ["V1", "V2", "V4", "VTC"]  # depth split in quarters


def test_resizing_for_the_model_is_antialiased(tmp_path):
    """A 224-px grating at 0.4 cycles/pixel is 1.4 cycles/pixel at 64 px: above Nyquist. The
    resize a model's images get (arrays in features, image files read for predict) must low-pass it
    away instead of folding it into a strong false grating; a 0.05 cycles/pixel grating survives."""
    from PIL import Image

    from neurocwm.assemblies import StimulusSet
    from neurocwm.features import _prepare
    from neurocwm.images import StimulusImages
    from topography.gratings import render_gratings

    meta = {
        "orientation_deg": np.array([30.0, 30.0]),
        "sf_cpi": np.array([0.4 * 224, 0.05 * 224]),
        "phase": np.zeros(2),
        "color": np.zeros(2, dtype=int),
    }
    imgs = render_gratings(meta, 224)
    small = _prepare(torch.from_numpy(imgs), 64).numpy()
    contrast = small[:, 0].std(axis=(1, 2)) / imgs[:, 0].std(axis=(1, 2))
    assert contrast[0] < 0.05 and contrast[1] > 0.8, contrast
    paths = []
    for i, im in enumerate(imgs):
        paths.append(tmp_path / f"g{i}.png")
        Image.fromarray((im.transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(paths[-1])
    stim = StimulusSet.from_records(["hi", "lo"], [str(p) for p in paths])
    x = StimulusImages(stim, ["hi", "lo"], 64)[0:2]
    contrast = x[:, 0].std(axis=(1, 2)) / imgs[:, 0].std(axis=(1, 2))
    assert contrast[0] < 0.05 and contrast[1] > 0.8, contrast


def test_unit_subsets_keep_the_same_columns_in_memory_and_streamed(run, tmp_path):
    """`units=` keeps exactly those columns of the full responses; `unit_subsets` draws them seeded."""
    from neurocwm.features import unit_subsets

    dims = layer_dims(run)
    sizes = {k: int(np.prod(d)) for k, d in dims.items()}
    cap = sorted(sizes.values())[len(sizes) // 2]  # about half the layers are above it
    subsets = unit_subsets(dims, cap, seed=3)
    assert list(subsets) == list(dims)
    for k, idx in subsets.items():
        if sizes[k] <= cap:
            np.testing.assert_array_equal(idx, np.arange(sizes[k]))
        else:
            assert len(idx) == cap and np.all(np.diff(idx) > 0) and idx[-1] < sizes[k]
    assert any(len(v) < sizes[k] for k, v in subsets.items())
    again, other = unit_subsets(dims, cap, seed=3), unit_subsets(dims, cap, seed=4)
    assert all(np.array_equal(subsets[k], again[k]) for k in dims)
    assert any(not np.array_equal(subsets[k], other[k]) for k in dims)
    assert all(len(v) == sizes[k] for k, v in unit_subsets(dims, None).items())
    x = _images(7)
    full = layer_responses(run, x, batch_size=3, progress=False)
    kept = layer_responses(run, x, batch_size=3, progress=False, units=subsets)
    two = ("layer2.0", "layer4.1")
    units = {k: subsets[k] for k in two}
    ds = layer_responses(run, x, list(two), batch_size=3, progress=False, path=tmp_path / "u.nc", units=units)
    for k in dims:
        np.testing.assert_array_equal(kept[k], full[k][:, subsets[k]])
    for k in ("layer2.0", "layer4.1"):
        np.testing.assert_array_equal(np.asarray(ds[k]), full[k][:, subsets[k]])
    ds.close()
    with pytest.raises(ValueError, match="cannot be combined"):
        layer_responses(run, x, progress=False, units=subsets, pool="channel_max")
    with pytest.raises(ValueError, match="not among the layers asked for"):
        layer_responses(run, x, ["layer2.0"], progress=False, units={"layer4.1": [0, 1]})
    n = sizes["layer4.1"]
    with pytest.raises(ValueError, match=rf"units\['layer4.1'\] must be a 1-D array of indices in \[0, {n}\)"):
        layer_responses(run, x, ["layer4.1"], progress=False, units={"layer4.1": np.array([0, n])})


def test_lazy_stimulus_images_give_the_responses_of_the_array(run, tmp_path):
    """Image files read batch by batch (predict's path) = the same images as one array (score's path)."""
    from PIL import Image

    from neurocwm.assemblies import StimulusSet
    from neurocwm.images import StimulusImages

    rng = np.random.default_rng(5)
    raw = rng.integers(0, 256, (5, 48, 48, 3), dtype=np.uint8)
    paths = []
    for i, a in enumerate(raw):
        paths.append(tmp_path / f"i{i}.png")
        Image.fromarray(a).save(paths[-1])
    stim = StimulusSet.from_records([f"i{i}" for i in range(5)], [str(p) for p in paths])
    lazy = layer_responses(run, StimulusImages(stim, stim.stimulus_ids, 48), ["layer2.0"], batch_size=2, progress=False)
    arr = layer_responses(
        run, raw.transpose(0, 3, 1, 2).astype(np.float32) / 255, ["layer2.0"], batch_size=2, progress=False
    )
    np.testing.assert_array_equal(lazy["layer2.0"], arr["layer2.0"])
