"""``neurocwm import toponets``: exact import of TopoNets ResNet-18 state dicts (FFCV blur-pool layout), the
TopoLoss channel-grid positions, refusals, and the CLI end to end. Files are built here at width 16."""

import csv
import json
import os
from collections import OrderedDict
from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import require_shared
from test_import_tdann import batch_norm_eval

from neurocwm.cli import main
from neurocwm.features import IMAGENET_MEAN, IMAGENET_STD, forward_layers
from neurocwm.imports.toponets import import_toponets, tau_from_name
from neurocwm.imports.unpickle import UnsafePickleError
from neurocwm.models import create_model
from neurocwm.runs import load_run
from topography.channel_grid import channel_mosaic_positions, topoloss_grid_shape

BLOCKS = ("layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer3.1", "layer4.0", "layer4.1")
BLURRED = (
    "layer2.0.conv1",
    "layer2.0.downsample.0",
    "layer3.0.conv1",
    "layer3.0.downsample.0",
    "layer4.0.conv1",
    "layer4.0.downsample.0",
)
BLUR = torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16  # FFCV's blur-pool filter


def toponets_state(seed=0, width=16, classes=1000):
    """A TopoNets checkpoint's keys: torchvision ResNet-18 names, strided convs as ``<conv>.conv.weight`` +
    ``<conv>.blur_filter``, and ``fc``; random weights and BatchNorm statistics."""
    g = torch.Generator().manual_seed(seed)
    sd = OrderedDict()
    chans = {1: width, 2: 2 * width, 3: 4 * width, 4: 8 * width}
    sd["conv1.weight"] = 0.1 * torch.randn(width, 3, 7, 7, generator=g)

    def bn(p, c):
        sd[f"{p}.weight"] = 1 + 0.1 * torch.randn(c, generator=g)
        sd[f"{p}.bias"] = 0.1 * torch.randn(c, generator=g)
        sd[f"{p}.running_mean"] = 0.1 * torch.randn(c, generator=g)
        sd[f"{p}.running_var"] = 0.5 + torch.rand(c, generator=g)
        sd[f"{p}.num_batches_tracked"] = torch.tensor(100)

    bn("bn1", width)
    cin = width
    for s in range(1, 5):
        c = chans[s]
        for j in range(2):
            p = f"layer{s}.{j}"
            k = f"{p}.conv1" + (".conv" if f"{p}.conv1" in BLURRED else "")
            sd[f"{k}.weight"] = torch.randn(c, cin, 3, 3, generator=g) / (3 * cin**0.5)
            if f"{p}.conv1" in BLURRED:
                sd[f"{p}.conv1.blur_filter"] = BLUR.repeat(cin, 1, 1, 1)
            bn(f"{p}.bn1", c)
            sd[f"{p}.conv2.weight"] = torch.randn(c, c, 3, 3, generator=g) / (3 * c**0.5)
            bn(f"{p}.bn2", c)
            if s > 1 and j == 0:
                sd[f"{p}.downsample.0.conv.weight"] = torch.randn(c, cin, 1, 1, generator=g) / cin**0.5
                sd[f"{p}.downsample.0.blur_filter"] = BLUR.repeat(cin, 1, 1, 1)
                bn(f"{p}.downsample.1", c)
            cin = c
    sd["fc.weight"] = torch.randn(classes, 8 * width, generator=g)
    sd["fc.bias"] = torch.randn(classes, generator=g)
    return sd


def reference_blocks(sd, images):
    """Block outputs with plain functional ops: depthwise blur (stride 1, pad 1) before each blurred conv."""

    bn = partial(batch_norm_eval, sd)

    def blur(x, p):
        return F.conv2d(x, sd[f"{p}.blur_filter"], padding=1, groups=x.shape[1])

    x = (images - torch.tensor(IMAGENET_MEAN)[None, :, None, None]) / torch.tensor(IMAGENET_STD)[None, :, None, None]
    x = F.max_pool2d(F.relu(bn(F.conv2d(x, sd["conv1.weight"], stride=2, padding=3), "bn1")), 3, 2, 1)
    out = {}
    for s in range(1, 5):
        for j in range(2):
            p = f"layer{s}.{j}"
            if f"{p}.conv1" in BLURRED:
                h = F.conv2d(blur(x, f"{p}.conv1"), sd[f"{p}.conv1.conv.weight"], stride=2, padding=1)
                idt = bn(
                    F.conv2d(blur(x, f"{p}.downsample.0"), sd[f"{p}.downsample.0.conv.weight"], stride=2),
                    f"{p}.downsample.1",
                )
            else:
                h = F.conv2d(x, sd[f"{p}.conv1.weight"], padding=1)
                idt = x
            h = bn(F.conv2d(F.relu(bn(h, f"{p}.bn1")), sd[f"{p}.conv2.weight"], padding=1), f"{p}.bn2")
            x = F.relu(h + idt)
            out[p] = x
    return out


def test_our_blurpool_resnet_has_the_published_keys():
    ours = create_model("resnet18_blurpool").state_dict()
    pub = toponets_state(width=64)
    assert set(ours) == set(pub) - {"fc.weight", "fc.bias"}
    for k, v in ours.items():
        assert v.shape == pub[k].shape, k
        if k.endswith("blur_filter"):
            assert torch.equal(v, pub[k])


def test_topoloss_grid_and_mosaic():
    assert [topoloss_grid_shape(n) for n in (64, 128, 256, 512, 96, 7, 1)] == [
        (8, 8),
        (8, 16),
        (16, 16),
        (16, 32),
        (8, 12),
        (1, 7),
        (1, 1),
    ]
    pos, s = channel_mosaic_positions(128, 3, 2, side_mm=32.0)  # tiles 8 x 16, mosaic 24 x 32 channels
    assert s == 1.0 and pos.shape == (128 * 6, 2)
    idx = lambda c, h, w: c * 6 + h * 2 + w  # noqa: E731 - C-major, as torch.flatten
    np.testing.assert_array_equal(pos[idx(0, 0, 0)], [0.5, 0.5])
    np.testing.assert_array_equal(pos[idx(17, 0, 0)], [1.5, 1.5])  # row 1, column 1 of the grid
    np.testing.assert_array_equal(pos[idx(17, 2, 1)], [16 + 1.5, 16 + 1.5])  # same channel, tile (2, 1)
    assert len(np.unique(pos, axis=0)) == len(pos) and pos.max() < 32.0
    with pytest.raises(ValueError, match="n_channels"):
        topoloss_grid_shape(0)


def test_import_is_exact(tmp_path):
    sd = toponets_state(seed=2)
    ckpt = tmp_path / "all_topo_tau_10.0.pt"
    torch.save(sd, ckpt)
    out = import_toponets(ckpt, tmp_path / "run", image_size=64, n_windows=500)
    run = load_run(out)
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    got, ref = forward_layers(run, images), reference_blocks(sd, images)
    for name in BLOCKS:
        assert got[name].shape == ref[name].shape
        torch.testing.assert_close(got[name], ref[name], rtol=1e-5, atol=1e-5)
    assert torch.equal(run.model.head.weight, sd["fc.weight"])
    cfg = run.config
    assert cfg["arch"] == "resnet18_blurpool_w16" and cfg["alpha"] == 10.0 and cfg["imported"]["tau"] == 10.0
    assert cfg["preprocessing"]["center_crop"] is None and "Deb" in cfg["imported"]["citation"]
    assert cfg["imported"]["checkpoint"]["size"] == ckpt.stat().st_size
    # positions: exactly the mosaic of the TopoLoss grid, neighbourhoods seeded
    for name in BLOCKS:
        ly = run.sheet[name]
        expected, _ = channel_mosaic_positions(*ly.dims, ly.side_mm)
        np.testing.assert_array_equal(ly.coordinates, expected.astype(np.float32))
        assert ly.neighborhoods.shape[1] >= 3
    assert run.sheet["layer2.0"].side_mm == 36.75 and run.sheet["layer4.1"].area == "VTC"
    again = load_run(import_toponets(ckpt, tmp_path / "run2", image_size=64, n_windows=500))
    np.testing.assert_array_equal(again.sheet["layer3.0"].neighborhoods, run.sheet["layer3.0"].neighborhoods)


def test_refusals(tmp_path):
    marker = tmp_path / "marker"
    cases = {
        "extra": ({**toponets_state(), "module.fc.weight": torch.zeros(1)}, r"unexpected key 'module\.fc\.weight'"),
        "missing": (
            {k: v for k, v in toponets_state().items() if k != "layer3.0.conv1.blur_filter"},
            r"missing key 'layer3\.0\.conv1\.blur_filter'",
        ),
        "plain": (
            {
                k.replace(".conv.weight", ".weight"): v
                for k, v in toponets_state().items()
                if not k.endswith("blur_filter")
            },
            r"unexpected key 'layer2\.0\.conv1\.weight'",
        ),
        "nested": ({"state_dict": toponets_state()}, r"unexpected key 'state_dict'"),
        "shape": ({**toponets_state(), "fc.weight": torch.zeros(1000, 64)}, r"shape \(1000, 64\).*\(1000, 128\)"),
    }
    for name, (sd, match) in cases.items():
        path = tmp_path / f"{name}.pt"
        torch.save(sd, path)
        with pytest.raises(ValueError, match=match):
            import_toponets(path, tmp_path / "run", image_size=64, n_windows=200)
    evil = tmp_path / "evil.pt"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    torch.save({**toponets_state(), "x": Evil()}, evil)
    with pytest.raises(UnsafePickleError, match="weights_only"):
        import_toponets(evil, tmp_path / "run", image_size=64)
    assert not marker.exists() and not (tmp_path / "run").exists()
    assert tau_from_name("all_topo_tau_0.5.pt") == 0.5 and tau_from_name("x.pt") is None


def test_cli_import_then_score_v1(tmp_path, capsys):
    ringach = require_shared("ringach2002", "ringach_2002_db.mat")
    ckpt = tmp_path / "all_topo_tau_5.0.pt"
    torch.save(toponets_state(seed=1), ckpt)
    run = tmp_path / "run"
    assert (
        main(
            ["import", "toponets", str(ckpt), "--out", str(run), "--image-size", "64", "--neighborhood-windows", "300"]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "tau 5.0" in text and "layer4.1 16x8" not in text and "layer4.1 8x16" in text
    assert main(["score", str(run), "--only", "v1", "--ringach", str(ringach), "--no-progress", "--formats"]) == 0
    with open(run / "score" / "results.csv", newline="") as fh:
        rows = {(r["metric"], r["layer"]): float(r["value"]) for r in csv.DictReader(fh)}
    for layer in ("layer2.0", "layer2.1"):
        assert 0 <= rows[("fraction_orientation_selective", layer)] <= 1
    assert (
        json.loads((run / "score" / "results.json").read_text())["config"]["positions"]
        == "TopoLoss channel-grid mosaic"
    )
    assert main(["import", "toponets", str(tmp_path / "missing.pt")]) == 2
    assert "no toponets catalogue entry" in capsys.readouterr().err


def test_cli_import_by_catalogue_name_downloads_once(tmp_path, monkeypatch, capsys):
    from neurocwm import hub

    src = tmp_path / "server" / "all_topo_tau_20.0.pt"
    src.parent.mkdir()
    torch.save(toponets_state(seed=3), src)
    entry = {
        "name": "toponets-x-tau20",
        "family": "toponets",
        "kind": "checkpoint",
        "url": src.as_uri(),
        "filename": src.name,
        "size": src.stat().st_size,
        "sha256": None,
        "citation": "c",
        "licence": "cc",
        "variant": {"tau": 20.0},
    }
    monkeypatch.setattr(hub, "catalogue", lambda: {"models": [entry]})
    monkeypatch.setenv(hub.ENV_HOME, str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    args = ["import", "toponets", "toponets-x-tau20", "--image-size", "64", "--neighborhood-windows", "200"]
    assert main(args + ["--no-progress"]) == 0
    cfg = json.loads((tmp_path / "runs" / "toponets-x-tau20" / "config.json").read_text())
    assert cfg["alpha"] == 20.0 and cfg["imported"]["licence"] == "cc"
    assert cfg["imported"]["checkpoint"]["path"] == str(tmp_path / "home" / "toponets" / "toponets-x-tau20" / src.name)
    src.unlink()  # offline now: the cached, checked copy serves a second import
    assert main(args + ["--out", str(tmp_path / "again"), "--no-progress"]) == 0
    assert (tmp_path / "again" / "model.safetensors").is_file()
