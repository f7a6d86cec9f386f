"""``neurocwm import tdann``: exact import of published TDANN checkpoints (VISSL layout) and spacetorch
positions folders (.pkl and .npz), refusals, pickles that must never run, and the CLI end to end.

Every file is built here in the published layout, at a small width (16) and input size (32 px).
"""

import csv
import dataclasses
import json
import os
import pickle
import sys
import types
from collections import OrderedDict
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import require_shared

from neurocwm.cli import main
from neurocwm.features import IMAGENET_MEAN, IMAGENET_STD, forward_layers
from neurocwm.imports.tdann import BLOCKS, import_tdann, published_variant, read_positions_folder
from neurocwm.imports.unpickle import UnsafePickleError, load_layer_positions_pickle, load_torch_checkpoint
from neurocwm.models.resnet import SpatialResNet18
from neurocwm.runs import load_run

WIDTH, SIZE = 16, 32
# (channels, height, width) of each block's output: channels double and the side halves from stage to stage
DIMS = {f"layer{s}.{j}": (WIDTH * 2 ** (s - 1), *[SIZE // 2 ** (s + 1)] * 2) for s in range(1, 5) for j in range(2)}


# ------------------------------------------------------------------------------------------
# builders of the published layouts


def _random_resnet_state(seed=0, width=WIDTH):
    """torchvision-named ResNet-18 tensors with non-trivial BatchNorm statistics."""
    torch.manual_seed(seed)
    net = SpatialResNet18(width=width)
    sd = net.state_dict()
    g = torch.Generator().manual_seed(seed + 1)
    for k, v in sd.items():
        if k.endswith("running_var"):
            sd[k] = 0.5 + torch.rand(v.shape, generator=g)
        elif k.endswith("running_mean") or k.endswith(".bias"):
            sd[k] = 0.1 * torch.randn(v.shape, generator=g)
        elif k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(12345)
        elif v.ndim == 1:
            sd[k] = 1 + 0.1 * torch.randn(v.shape, generator=g)
    return OrderedDict((k, v.clone()) for k, v in sd.items())


def _alias(k):
    parts = k.split(".")
    if parts[0].startswith("layer"):
        return f"{parts[0]}_{parts[1]}." + ".".join(parts[2:])
    return k


def vissl_checkpoint(path, head="simclr", seed=0, width=WIDTH, base_model=True, feature_blocks=True, edit=None):
    """A VISSL checkpoint as the TDANN release writes it: trunk tensors twice (``base_model.*`` and
    ``_feature_blocks.*`` without bn1), a SimCLR or linear head, top-level bookkeeping."""
    tv = _random_resnet_state(seed, width)
    trunk = OrderedDict()
    if base_model:
        trunk.update((f"base_model.{k}", v) for k, v in tv.items())
    if feature_blocks:
        trunk.update((f"_feature_blocks.{_alias(k)}", v.clone()) for k, v in tv.items() if not k.startswith("bn1."))
    if not base_model:  # bn1 lives only in base_model
        trunk.update((f"base_model.{k}", v) for k, v in tv.items() if k.startswith("bn1."))
    g = torch.Generator().manual_seed(seed + 7)
    feat = 8 * width
    if head == "simclr":
        heads = OrderedDict(
            [
                ("0.0.clf.0.weight", torch.randn(512, feat, generator=g)),
                ("0.0.clf.0.bias", torch.randn(512, generator=g)),
                ("0.1.clf.0.weight", torch.randn(128, 512, generator=g)),
                ("0.1.clf.0.bias", torch.randn(128, generator=g)),
            ]
        )
    else:
        heads = OrderedDict(
            [("0.clf.0.weight", torch.randn(10, feat, generator=g)), ("0.clf.0.bias", torch.randn(10, generator=g))]
        )
    if edit:
        edit(trunk, heads)
    ckpt = {
        "phase_idx": 199,
        "iteration": 500400,
        "iteration_num": 500400,
        "train_phase_idx": 199,
        "loss": OrderedDict(),
        "classy_state_dict": {
            "base_model": {"model": {"trunk": trunk, "heads": heads}, "meta": {}},
            "optimizer": {"state": {0: {"momentum_buffer": torch.zeros(3)}}, "param_groups": [{"lr": 0.0}]},
            "phase_idx": 199,
            "train_phase_idx": 199,
            "num_updates": 500400,
        },
    }
    torch.save(ckpt, path)
    return tv, heads


@dataclasses.dataclass
class LayerPositions:
    """Same fields as spacetorch.models.positions.LayerPositions."""

    name: str
    dims: tuple
    coordinates: np.ndarray
    neighborhood_indices: np.ndarray
    neighborhood_width: float


def published_layers(seed=0, dims=DIMS):
    rng = np.random.default_rng(seed)
    out = {}
    for i, (name, d) in enumerate(dims.items()):
        n = int(np.prod(d))
        side = [4.0, 4.0, 24.5, 24.5, 20.0, 16.0, 10.0, 10.0][i]
        out[name] = LayerPositions(
            name=name,
            dims=tuple(d),
            coordinates=rng.uniform(0, side, (n, 2)),
            neighborhood_indices=rng.integers(0, n, (20, min(25, n))),
            neighborhood_width=float(side / d[2]),
        )
    return out


def _pickle_as_spacetorch(obj, path, protocol):
    """Pickle ``obj`` so that its class reads spacetorch.models.positions.LayerPositions."""
    names = ["spacetorch", "spacetorch.models", "spacetorch.models.positions"]
    saved = {n: sys.modules.get(n) for n in names}
    mod = types.ModuleType("spacetorch.models.positions")
    cls_module, cls_qual = LayerPositions.__module__, LayerPositions.__qualname__
    try:
        for n in names[:-1]:
            sys.modules[n] = types.ModuleType(n)
        sys.modules[names[-1]] = mod
        LayerPositions.__module__ = "spacetorch.models.positions"
        mod.LayerPositions = LayerPositions
        with open(path, "wb") as fh:
            pickle.dump(obj, fh, protocol=protocol)
    finally:
        LayerPositions.__module__, LayerPositions.__qualname__ = cls_module, cls_qual
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


def positions_folder(folder, fmt="npz", seed=0, dims=DIMS, version=None, protocol=4):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    layers = published_layers(seed, dims)
    for name, lp in layers.items():
        if fmt == "npz":
            np.savez(folder / f"{name}.npz", **vars(lp))
        else:
            _pickle_as_spacetorch(lp, folder / f"{name}.pkl", protocol)
    if version is not None:
        (folder / "version.txt").write_text(f"{version}\n")
    return layers


# ------------------------------------------------------------------------------------------
# independent forward from the raw state dict


def batch_norm_eval(sd, x, p):
    """Eval-mode BatchNorm of ``x`` with the statistics and affine weights ``{p}.*`` of state dict ``sd``."""
    return F.batch_norm(
        x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"], training=False, eps=1e-5
    )


def reference_blocks(tv, images):
    """The 8 block outputs computed with plain functional ops from torchvision-named tensors."""

    bn = partial(batch_norm_eval, tv)
    mean = torch.tensor(IMAGENET_MEAN)[None, :, None, None]
    std = torch.tensor(IMAGENET_STD)[None, :, None, None]
    x = (images - mean) / std
    x = F.max_pool2d(F.relu(bn(F.conv2d(x, tv["conv1.weight"], stride=2, padding=3), "bn1")), 3, 2, 1)
    out = {}
    for stage in range(1, 5):
        for j in range(2):
            p = f"layer{stage}.{j}"
            stride = 2 if (stage > 1 and j == 0) else 1
            h = F.relu(bn(F.conv2d(x, tv[f"{p}.conv1.weight"], stride=stride, padding=1), f"{p}.bn1"))
            h = bn(F.conv2d(h, tv[f"{p}.conv2.weight"], padding=1), f"{p}.bn2")
            idt = x
            if f"{p}.downsample.0.weight" in tv:
                idt = bn(F.conv2d(x, tv[f"{p}.downsample.0.weight"], stride=stride), f"{p}.downsample.1")
            x = F.relu(h + idt)
            out[p] = x
    return out


def _images(n=3, seed=0):
    return torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def published(tmp_path):
    ckpt = (
        tmp_path
        / "simclr_spatial_resnet18_swappedon_SineGrating2019_isoswap_3_lwx2_seed_1_checkpoints"
        / "model_final_checkpoint_phase199.torch"
    )
    ckpt.parent.mkdir()
    tv, heads = vissl_checkpoint(ckpt)
    pos = tmp_path / "positions"
    layers = positions_folder(pos, "npz")
    return ckpt, pos, tv, heads, layers


# ------------------------------------------------------------------------------------------
# exactness


@pytest.mark.parametrize("fmt", ["npz", "pkl"])
def test_import_is_exact_blocks_positions_and_neighbourhoods(tmp_path, fmt):
    ckpt = tmp_path / "model_final_checkpoint_phase199.torch"
    tv, heads = vissl_checkpoint(ckpt, seed=3)
    layers = positions_folder(tmp_path / "pos", fmt, seed=4)
    out = import_tdann(ckpt, tmp_path / "pos", tmp_path / "run")
    run = load_run(out)
    images = _images()
    got = forward_layers(run, images)
    ref = reference_blocks(tv, images)
    assert list(got) == list(BLOCKS)
    for name in BLOCKS:
        assert got[name].shape == ref[name].shape
        torch.testing.assert_close(got[name], ref[name], rtol=1e-5, atol=1e-5)
    # the SimCLR head: Linear - ReLU - Linear from 0.0.clf.0 and 0.1.clf.0
    sd = run.model.state_dict()
    assert torch.equal(sd["head.net.0.weight"], heads["0.0.clf.0.weight"])
    assert torch.equal(sd["head.net.2.bias"], heads["0.1.clf.0.bias"])
    # positions and neighbourhoods round-trip exactly (coordinates at float32, as the reference trains)
    for name, lp in layers.items():
        ly = run.sheet[name]
        assert ly.dims == lp.dims
        np.testing.assert_array_equal(ly.coordinates, lp.coordinates.astype(np.float32))
        np.testing.assert_array_equal(ly.neighborhoods, lp.neighborhood_indices)
        assert ly.neighborhood_width_mm == lp.neighborhood_width
        assert ly.side_mm == pytest.approx(float(np.ptp(lp.coordinates.astype(np.float32), axis=0).max()))
    cfg = json.loads((out / "config.json").read_text())
    imp = cfg["imported"]
    assert cfg["image_size"] == SIZE and cfg["arch"] == "resnet18_w16" and cfg["objective"] == "simclr"
    assert cfg["preprocessing"]["center_crop"] is None and cfg["preprocessing"]["mean"] == list(IMAGENET_MEAN)
    assert imp["trunk_copy"] == "base_model" and imp["checkpoint"]["size"] == ckpt.stat().st_size
    assert len(imp["checkpoint"]["sha256"]) == 64 and "Margalit" in imp["citation"]
    assert [f["name"] for f in imp["positions"]["files"]] == sorted(f"{b}.{fmt}" for b in BLOCKS)
    assert imp["positions_version"] == 1 and imp["checkpoint_info"]["phase_idx"] == 199
    assert set(imp["tissue_extent_mm"]) == set(BLOCKS)


def test_supervised_head_and_feature_blocks_fallback(tmp_path):
    ckpt = tmp_path / "supervised_spatial_resnet18_swappedon_SineGrating2019_lw0_checkpoints" / "m.torch"
    ckpt.parent.mkdir()
    tv, heads = vissl_checkpoint(ckpt, head="linear", base_model=False)
    positions_folder(tmp_path / "pos", "npz", version=2)
    out = import_tdann(ckpt, tmp_path / "pos", tmp_path / "run")
    run = load_run(out)
    cfg = run.config
    assert cfg["objective"] == "supervised" and cfg["num_classes"] == 10
    assert cfg["imported"]["trunk_copy"] == "mixed"  # bn1 only exists as base_model.bn1
    assert cfg["imported"]["trunk_tensors_from"]["base_model"] == 5  # bn1 weight, bias, mean, var, count
    assert cfg["imported"]["positions_version"] == 2
    images = _images(2, 1)
    got, ref = forward_layers(run, images), reference_blocks(tv, images)
    for name in BLOCKS:
        torch.testing.assert_close(got[name], ref[name], rtol=1e-5, atol=1e-5)
    assert torch.equal(run.model.head.weight, heads["0.clf.0.weight"])


def test_variant_from_published_names():
    assert published_variant("simclr_spatial_resnet18_swappedon_SineGrating2019_isoswap_3_checkpoints") == {
        "objective": "simclr",
        "alpha": 0.25,
        "seed": 0,
        "spatial_loss": "relative",
    }
    assert published_variant("supervised_spatial_resnet18_swappedon_SineGrating2019_lwx100_seed_4") == {
        "objective": "supervised",
        "alpha": 25.0,
        "seed": 4,
        "spatial_loss": "relative",
    }
    assert (
        published_variant("simclr_spatial_resnet18_swappedon_SineGrating2019_old_scl_lw01_seed_2")["spatial_loss"]
        == "absolute"
    )
    assert published_variant("my_model") == {}


def test_alpha_and_seed_recorded_and_human_scale(published, tmp_path):
    ckpt, pos, _, _, layers = published
    out = import_tdann(ckpt, pos, tmp_path / "run", human_scale=True)
    run = load_run(out)
    assert run.config["alpha"] == 0.5 and run.config["seed"] == 1  # from ..._lwx2_seed_1_checkpoints
    np.testing.assert_array_equal(
        run.sheet["layer4.1"].coordinates, (layers["layer4.1"].coordinates * 7.0).astype(np.float32)
    )
    assert run.sheet["layer2.0"].neighborhood_width_mm == pytest.approx(layers["layer2.0"].neighborhood_width * 1.5)
    positions_folder(tmp_path / "v2", "npz", version=2)
    with pytest.raises(ValueError, match="version-1"):
        import_tdann(ckpt, tmp_path / "v2", tmp_path / "run2", human_scale=True)


# ------------------------------------------------------------------------------------------
# refusals


def _expect_refusal(ckpt, pos, out, match):
    with pytest.raises(ValueError, match=match):
        import_tdann(ckpt, pos, out)
    assert not out.exists()


def test_wrong_layouts_are_refused_naming_the_key(published, tmp_path):
    _, pos, _, _, _ = published
    out = tmp_path / "run"
    cases = [
        (
            lambda t, h: t.__setitem__("base_model.fc.weight", torch.zeros(10, 128)),
            r"unexpected trunk key 'base_model\.fc",
        ),
        (
            lambda t, h: t.__setitem__("base_model.layer1.0.conv3.weight", torch.zeros(1)),
            r"'base_model\.layer1\.0\.conv3",
        ),
        (lambda t, h: t.__setitem__("module.conv1.weight", torch.zeros(1)), r"unexpected trunk key 'module\.conv1"),
        (
            lambda t, h: [
                t.pop("base_model.layer3.1.bn2.running_var"),
                t.pop("_feature_blocks.layer3_1.bn2.running_var"),
            ],
            r"no tensor for layer3\.1\.bn2\.running_var",
        ),
        (lambda t, h: t["_feature_blocks.layer2_0.conv1.weight"].add_(1.0), "differ"),
        (lambda t, h: h.__setitem__("0.2.clf.0.weight", torch.zeros(1)), r"unexpected key '0\.2\.clf\.0\.weight'"),
        (lambda t, h: h.clear() or h.__setitem__("0.channel_bn.weight", torch.zeros(512)), r"unexpected head key"),
    ]
    for i, (edit, match) in enumerate(cases):
        ckpt = tmp_path / f"c{i}.torch"
        vissl_checkpoint(ckpt, edit=edit)
        _expect_refusal(ckpt, pos, out, match)
    # a plain torchvision state dict, and a width we have no architecture for
    plain = tmp_path / "plain.pth"
    torch.save(_random_resnet_state(), plain)
    _expect_refusal(plain, pos, out, "not a VISSL checkpoint")
    odd = tmp_path / "odd.torch"
    vissl_checkpoint(odd, width=8)
    _expect_refusal(odd, pos, out, "width 8")


def test_mismatched_dims_are_refused(published, tmp_path):
    ckpt, _, _, _, _ = published
    # positions made for a 64-px input: every layer's grid is twice too large
    big = {k: (c, 2 * h, 2 * w) for k, (c, h, w) in DIMS.items()}
    positions_folder(tmp_path / "big", "npz", dims=big)
    with pytest.raises(ValueError, match=r"layer1\.0 are for \(16, 16, 16\).*gives \(16, 8, 8\)"):
        import_tdann(ckpt, tmp_path / "big", tmp_path / "run", image_size=32)
    # positions of a wider model
    wide = {k: (2 * c, h, w) for k, (c, h, w) in DIMS.items()}
    positions_folder(tmp_path / "wide", "npz", dims=wide)
    with pytest.raises(ValueError, match=r"\(32, 8, 8\) units.*\(16, 8, 8\)"):
        import_tdann(ckpt, tmp_path / "wide", tmp_path / "run")
    # prod(dims) != N inside one file
    pos = tmp_path / "bad"
    layers = positions_folder(pos, "npz")
    lp = dataclasses.replace(layers["layer2.0"], dims=(32, 4, 5))
    np.savez(pos / "layer2.0.npz", **vars(lp))
    with pytest.raises(ValueError, match=r"dims \(32, 4, 5\) give 640 units but there are 512"):
        read_positions_folder(pos)
    lp = dataclasses.replace(layers["layer2.0"], neighborhood_indices=np.array([[0, 512]]))
    np.savez(pos / "layer2.0.npz", **vars(lp))
    with pytest.raises(ValueError, match=r"outside \[0, 512\)"):
        read_positions_folder(pos)
    assert not (tmp_path / "run").exists()


def test_positions_folder_refusals(tmp_path):
    pos = tmp_path / "pos"
    layers = positions_folder(pos, "npz")
    np.savez(pos / "layer1.1.npz", extra=np.zeros(2), **vars(layers["layer1.1"]))
    with pytest.raises(ValueError, match="unexpected array 'extra'"):
        read_positions_folder(pos)
    np.savez(pos / "layer1.1.npz", **vars(layers["layer1.1"]))
    _pickle_as_spacetorch(layers["layer3.0"], pos / "layer3.0.pkl", 4)
    with pytest.raises(ValueError, match="both layer3.0.pkl and layer3.0.npz"):
        read_positions_folder(pos)
    (pos / "layer3.0.pkl").unlink()
    (pos / "layer4.1.npz").unlink()
    with pytest.raises(FileNotFoundError, match="no layer4.1.pkl or layer4.1.npz"):
        read_positions_folder(pos)
    np.savez(pos / "layer4.1.npz", **vars(dataclasses.replace(layers["layer4.1"], name="layer4.0")))
    with pytest.raises(ValueError, match="does not match the file name"):
        read_positions_folder(pos)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_pickled_positions_read_at_every_protocol(tmp_path, protocol):
    layers = published_layers(1)
    lp = layers["layer2.1"]
    _pickle_as_spacetorch(lp, tmp_path / "layer2.1.pkl", protocol)
    assert "spacetorch" not in sys.modules  # the real class is not needed to read it
    got = load_layer_positions_pickle(tmp_path / "layer2.1.pkl")
    assert got.name == "layer2.1" and tuple(got.dims) == lp.dims and got.neighborhood_width == lp.neighborhood_width
    np.testing.assert_array_equal(got.coordinates, lp.coordinates)
    np.testing.assert_array_equal(got.neighborhood_indices, lp.neighborhood_indices)


# ------------------------------------------------------------------------------------------
# nothing pickled runs code


class _WritesFile:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _gadgets(marker):
    code = f"open({str(marker)!r}, 'w').write('pwned')"
    return [
        _WritesFile(os.system, f"touch {marker}"),
        _WritesFile(exec, code),
        _WritesFile(eval, code),
        _WritesFile(Path.write_text, Path(marker), "pwned"),
    ]


def test_malicious_position_pickles_never_run(tmp_path):
    marker = tmp_path / "marker"
    pos = tmp_path / "pos"
    layers = positions_folder(pos, "npz")
    (pos / "layer1.0.npz").unlink()
    for i, gadget in enumerate(_gadgets(marker)):
        for payload in (gadget, dataclasses.replace(layers["layer1.0"], coordinates=gadget)):
            for protocol in (0, 4):
                _pickle_as_spacetorch(payload, pos / "layer1.0.pkl", protocol)
                with pytest.raises(UnsafePickleError, match="refused to unpickle global"):
                    load_layer_positions_pickle(pos / "layer1.0.pkl")
                assert not marker.exists(), f"gadget {i} ran"
    ckpt = tmp_path / "c.torch"
    vissl_checkpoint(ckpt)
    with pytest.raises(ValueError, match="refused"):
        import_tdann(ckpt, pos, tmp_path / "run")
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_malicious_checkpoints_never_run(tmp_path):
    marker = tmp_path / "marker"
    for i, gadget in enumerate(_gadgets(marker)):
        path = tmp_path / f"evil{i}.torch"
        vissl_checkpoint(path)
        ckpt = torch.load(path, weights_only=True)
        ckpt["loss"] = gadget
        torch.save(ckpt, path)
        with pytest.raises(UnsafePickleError, match="weights_only"):
            load_torch_checkpoint(path)
        assert not marker.exists(), f"gadget {i} ran"
    # a class outside the allow-list inside the weights is refused too (a weights_only refusal)
    path = tmp_path / "custom.torch"
    vissl_checkpoint(path)
    ckpt = torch.load(path, weights_only=True)
    ckpt["classy_state_dict"]["meta"] = LayerPositions("x", (1,), np.zeros((1, 2)), np.zeros((1, 1), int), 1.0)
    torch.save(ckpt, path)
    with pytest.raises(UnsafePickleError, match="LayerPositions"):
        load_torch_checkpoint(path)


def test_corrupt_files_are_refused(published, tmp_path):
    ckpt, pos, _, _, _ = published
    trunc = tmp_path / "trunc.torch"
    trunc.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    junk = tmp_path / "junk.torch"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    for bad in (trunc, junk):
        with pytest.raises(ValueError, match="not a readable torch checkpoint"):
            import_tdann(bad, pos, tmp_path / "run")
    data = (pos / "layer2.0.npz").read_bytes()
    (pos / "layer2.0.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="layer2.0.npz"):
        read_positions_folder(pos)
    (pos / "layer2.0.npz").unlink()
    _pickle_as_spacetorch(published_layers()["layer2.0"], pos / "layer2.0.pkl", 4)
    data = (pos / "layer2.0.pkl").read_bytes()
    (pos / "layer2.0.pkl").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable LayerPositions pickle"):
        read_positions_folder(pos)
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------------
# CLI end to end


def test_cli_import_then_score_v1_and_other_commands(published, tmp_path, capsys):
    ringach = require_shared("ringach2002", "ringach_2002_db.mat")
    ckpt, pos, tv, _, _ = published
    pos_pkl = tmp_path / "pos_pkl"
    positions_folder(pos_pkl, "pkl")
    run = tmp_path / "run"
    assert main(["import", "tdann", str(ckpt), "--positions", str(pos_pkl), "--out", str(run)]) == 0
    text = capsys.readouterr().out
    assert "alpha 0.5" in text and "trunk tensors from base_model" in text and "version 1" in text
    # a second import into the same folder is refused, --force replaces it
    assert main(["import", "tdann", str(ckpt), "--positions", str(pos), "--out", str(run)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert main(["import", "tdann", str(ckpt), "--positions", str(pos), "--out", str(run), "--force"]) == 0
    capsys.readouterr()
    assert main(["score", str(run), "--only", "v1", "--ringach", str(ringach), "--no-progress", "--formats"]) == 0
    with open(run / "score" / "results.csv", newline="") as fh:
        rows = {(r["metric"], r["layer"]): float(r["value"]) for r in csv.DictReader(fh)}
    for layer in ("layer2.0", "layer2.1"):
        assert 0 <= rows[("fraction_orientation_selective", layer)] <= 1
        assert ("ringach_ks_statistic", layer) in rows
    res = json.loads((run / "score" / "results.json").read_text())
    assert res["alpha"] == 0.5 and res["config"]["positions"] == "published: positions"
    # a second point of the sweep (alpha given by hand), then the alpha-sweep figures across both
    other = tmp_path / "ckpt0.torch"
    vissl_checkpoint(other, seed=5)
    run0 = tmp_path / "run0"
    assert main(["import", "tdann", str(other), "--positions", str(pos), "--out", str(run0), "--alpha", "0"]) == 0
    assert main(["score", str(run0), "--only", "v1", "--ringach", str(ringach), "--no-progress", "--formats"]) == 0
    assert (
        main(["figures", str(run0), str(run), "--out", str(tmp_path / "figs"), "--formats", "png", "--no-progress"])
        == 0
    )
    assert (tmp_path / "figs" / "alpha_sweeps.png").is_file()
    # brainscore export and positions optimize accept the imported run
    from neurocwm.brainscore_export import export_plugin

    exp = export_plugin(run, weights_url="file:///w.pt", out=tmp_path / "sub.zip", weights_out=tmp_path / "w.pt")
    state = torch.load(exp["weights"], weights_only=True)
    assert torch.equal(state["state_dict"]["layer4.1.conv2.weight"], tv["layer4.1.conv2.weight"])
    # predict on a small recording made here (24 images x 4 neuroids)
    from PIL import Image

    rng = np.random.default_rng(0)
    (tmp_path / "imgs").mkdir()
    for i in range(24):
        img = rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)
        Image.fromarray(img).save(tmp_path / "imgs" / f"im{i:02d}.png")
    np.save(tmp_path / "resp.npy", rng.normal(size=(24, 4)))
    assert (
        main(
            [
                "predict",
                str(run),
                "--neural",
                str(tmp_path / "imgs"),
                "--responses",
                str(tmp_path / "resp.npy"),
                "--region",
                "IT",
            ]
        )
        == 0
    )
    assert (run / "predictivity" / "imgs_resp.pls.json").is_file()  # <data>.<metric>: runs of other metrics kept
    with pytest.warns(UserWarning, match="alpha = 0.5"):
        assert main(["positions", "optimize", str(run), "--steps", "200", "--layers", "layer2.0", "--no-progress"]) == 0


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    assert main(["import", "tdann", str(tmp_path / "nope.torch"), "--positions", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("neurocwm import: error:") and "\n" not in err and "catalogue" in err
    ckpt = tmp_path / "c.torch"
    vissl_checkpoint(ckpt)
    assert main(["import", "tdann", str(ckpt)]) == 2
    assert "--positions" in capsys.readouterr().err


def test_numpy_values_written_by_numpy_1_are_allowed(published, tmp_path):
    """Old checkpoints name numpy 1.x's ``numpy.core.multiarray`` reconstructors: on the allow-list."""
    import io

    ckpt, pos, tv, _, _ = published
    obj = torch.load(ckpt, weights_only=True)
    obj["loss"] = {"value": np.float64(1.25), "history": np.arange(3)}
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False)  # plain pickle stream: names are patchable
    legacy = tmp_path / "legacy.torch"
    legacy.write_bytes(buf.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    assert b"numpy.core.multiarray\n_reconstruct" in legacy.read_bytes()
    assert load_torch_checkpoint(legacy)["loss"]["value"] == 1.25
    run = load_run(import_tdann(legacy, pos, tmp_path / "run"))
    images = _images(2, 3)
    torch.testing.assert_close(
        forward_layers(run, images)["layer3.1"], reference_blocks(tv, images)["layer3.1"], rtol=1e-5, atol=1e-5
    )
