"""Faults a run folder must survive (issue 16): two processes on one run, damaged or missing
checkpoint pointers, truncated or corrupted checkpoints, invalid numbers, leftovers of kills."""

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import pytest
import torch
from conftest import TINY
from safetensors.numpy import load_file

from neurocwm.cli import main
from neurocwm.train.checkpoint import checkpoint_dirs, latest_checkpoint, save_checkpoint
from neurocwm.train.lock import RunLock


def _metrics_steps(run):
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """A finished 4-step run with a checkpoint after every step (step_3 and step_4 kept), written under umask 022."""
    out = tmp_path_factory.mktemp("rel") / "base"
    old = os.umask(0o022)
    try:
        assert main(["fit", "--out", str(out), *TINY, "--steps", "4", "--checkpoint-every", "1", "--alpha", "0.5"]) == 0
    finally:
        os.umask(old)
    return out


def _copy(base, tmp_path, name="run"):
    dst = tmp_path / name
    shutil.copytree(base, dst)
    return dst


def test_files_respect_the_umask(base_run):
    """Weights and checkpoints are as readable as any other file (not mkstemp's private 0600 / 0700)."""
    assert stat.S_IMODE((base_run / "model.safetensors").stat().st_mode) == 0o644
    assert stat.S_IMODE((base_run / "config.json").stat().st_mode) == 0o644
    ckpt = base_run / "checkpoints" / "step_0000004"
    assert stat.S_IMODE(ckpt.stat().st_mode) == 0o755
    assert stat.S_IMODE((ckpt / "model.safetensors").stat().st_mode) == 0o644
    assert not (base_run / ".lock").exists()  # released and removed at the end


def test_resume_takes_the_runs_own_settings(base_run, tmp_path, capsys):
    """`fit --out RUN --resume` needs no other option; a given option that disagrees is refused, one that
    agrees is not."""
    run = _copy(base_run, tmp_path)
    assert main(["fit", "--out", str(run), "--resume", "--steps", "6", "--no-progress", "--alpha", "0.5"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["arch"] == "resnet18_w16" and cfg["image_size"] == 32 and cfg["steps"] == 6 and cfg["alpha"] == 0.5
    assert _metrics_steps(run) == [1, 2, 3, 4, 5, 6]
    assert main(["fit", "--out", str(run), "--resume", "--alpha", "0.25"]) == 2
    err = capsys.readouterr().err
    assert "--alpha: run has 0.5, asked 0.25" in err and err.count("\n") == 1


@pytest.mark.parametrize("fault", ["missing", "dangling", "garbage"])
def test_resume_falls_back_when_latest_json_is_wrong(base_run, tmp_path, fault):
    run = _copy(base_run, tmp_path)
    pointer = run / "checkpoints" / "latest.json"
    if fault == "missing":
        pointer.unlink()
    elif fault == "dangling":
        pointer.write_text(json.dumps({"step": 99, "dir": "step_0000099"}))
    else:
        pointer.write_text("{not json")
    assert latest_checkpoint(run).name == "step_0000004"
    assert main(["fit", "--out", str(run), "--resume", "--steps", "5", "--no-progress"]) == 0
    assert _metrics_steps(run) == [1, 2, 3, 4, 5]  # continued, not started over
    assert [p.name for _, p in checkpoint_dirs(run)] == ["step_0000005", "step_0000004"]


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_resume_skips_a_damaged_newest_checkpoint(base_run, tmp_path, damage):
    """A truncated (or silently corrupted) newest checkpoint: resume from the older intact one, with a
    warning, and keep the damaged one until it is overwritten (never delete something newer)."""
    run = _copy(base_run, tmp_path)
    f = run / "checkpoints" / "step_0000004" / "model.safetensors"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2] if damage == "truncate" else data[:-5] + bytes(5))
    with pytest.warns(UserWarning, match="step_0000004"):
        assert latest_checkpoint(run).name == "step_0000003"
    with pytest.warns(UserWarning, match="resuming from step_0000003"):
        assert main(["fit", "--out", str(run), "--resume", "--steps", "5", "--no-progress"]) == 0
    assert _metrics_steps(run) == [1, 2, 3, 4, 5]
    names = [p.name for _, p in checkpoint_dirs(run)]
    assert names[:2] == ["step_0000005", "step_0000004"]  # step_4 rewritten by the resumed run, step_5 new
    assert latest_checkpoint(run).name == "step_0000005"


def test_resume_refuses_when_every_checkpoint_is_damaged(base_run, tmp_path, capsys):
    run = _copy(base_run, tmp_path)
    for _, ckpt in checkpoint_dirs(run):
        (ckpt / "optimizer.safetensors").write_bytes(b"\0" * 16)
    metrics = (run / "metrics.jsonl").read_bytes()
    assert main(["fit", "--out", str(run), "--resume", "--steps", "5", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no intact checkpoint" in err and err.count("\n") == 1
    assert (run / "metrics.jsonl").read_bytes() == metrics  # nothing wiped


def test_damaged_final_weights_give_one_line(base_run, tmp_path, capsys):
    run = _copy(base_run, tmp_path)
    (run / "model.safetensors").write_bytes(b"\x08\0\0\0\0\0\0\0{broken}")
    assert main(["positions", "optimize", str(run), "--steps", "10", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("neurocwm positions: error:") and "model.safetensors" in err and err.count("\n") == 1
    assert not (run / "positions_swapopt").exists()


def test_rotation_never_deletes_a_newer_checkpoint(tmp_path):
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    save_checkpoint(tmp_path, 55, model, opt)
    save_checkpoint(tmp_path, 1, model, opt)
    save_checkpoint(tmp_path, 2, model, opt)
    save_checkpoint(tmp_path, 3, model, opt)
    assert [s for s, _ in checkpoint_dirs(tmp_path)] == [55, 3, 2]  # older ones rotated, keep = 2 of them
    assert latest_checkpoint(tmp_path).name == "step_0000055"


def test_interrupted_write_temporaries_are_cleaned(base_run, tmp_path):
    run = _copy(base_run, tmp_path)
    leftovers = [
        run / ".model.safetensors.abc123.safetensors",
        run / "checkpoints" / ".latest.json.x1.json",
        run / "positions" / ".positions.safetensors.q.safetensors",
    ]
    for f in leftovers:
        f.write_bytes(b"x" * 100)
    tmp_ckpt = run / "checkpoints" / ".step_0000005.zz9"
    tmp_ckpt.mkdir()
    (tmp_ckpt / "model.safetensors").write_bytes(b"x")
    assert main(["fit", "--out", str(run), "--resume", "--steps", "5", "--no-progress"]) == 0
    assert not any(f.exists() for f in leftovers) and not tmp_ckpt.exists()


@pytest.mark.parametrize(
    "args, flag",
    [
        (["--lr", "nan"], "--lr"),
        (["--lr", "inf"], "--lr"),
        (["--weight-decay", "nan"], "--weight-decay"),
        (["--epochs", "0"], "--epochs"),
        (["--epochs", "-1"], "--epochs"),
        (["--epochs", "inf"], "--epochs"),
        (["--epochs", "0.00001"], "--epochs"),
        (["--alpha", "nan"], "--alpha"),
        (["--alpha", "inf"], "--alpha"),
        (["--seed", "-1"], "--seed"),
        (["--checkpoint-every", "0"], "--checkpoint-every"),
        (["--checkpoint-every", "-1"], "--checkpoint-every"),
        (["--neighborhoods-per-step", "0"], "--neighborhoods-per-step"),
        (["--neighborhoods-per-step", "-1"], "--neighborhoods-per-step"),
        (["--position-jitter", "nan"], "--position-jitter"),
        (["--data", ""], "--data"),
        (["--positions", ""], "--positions"),
        (["--steps", "0"], "--steps"),
        (["--batch-size", "0"], "--batch-size"),
        (["--workers", "-1"], "--workers"),
    ],
)
def test_invalid_numbers_are_refused_before_anything_is_written(tmp_path, capsys, args, flag):
    out = tmp_path / "run"
    length = [] if "--steps" in args or "--epochs" in args else ["--steps", "1"]
    assert main(["fit", "--out", str(out), *TINY, *length, *args]) == 2
    err = capsys.readouterr().err
    assert flag in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_early_failure_leaves_no_partial_run(tmp_path, capsys):
    """Positions that do not fit the model are refused before the folder exists; a corrected rerun is accepted."""
    bad = tmp_path / "pos.safetensors"
    bad.write_text("not a sheet")
    out = tmp_path / "run"
    assert main(["fit", "--out", str(out), *TINY, "--steps", "1", "--positions", str(bad)]) == 2
    assert "pos.safetensors" in capsys.readouterr().err
    assert not out.exists()
    out.mkdir()  # an existing empty folder stays empty
    assert main(["fit", "--out", str(out), *TINY, "--steps", "1", "--positions", str(bad)]) == 2
    assert list(out.iterdir()) == []
    assert main(["fit", "--out", str(out), *TINY, "--steps", "1"]) == 0


def test_non_finite_weights_are_never_saved(tmp_path):
    from neurocwm.train.loop import _write_final

    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.weight[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="non-finite at step 7"):
        _write_final(tmp_path, model, {}, 7)
    assert list(tmp_path.iterdir()) == []


def test_stale_lock_is_taken_over_and_a_live_one_refused(base_run, tmp_path, capsys):
    run = _copy(base_run, tmp_path)
    (run / ".lock").write_text(json.dumps({"pid": 999999, "host": "x", "since": "then"}))  # a dead holder's file
    assert main(["fit", "--out", str(run), "--resume", "--steps", "5", "--no-progress"]) == 0
    assert not (run / ".lock").exists()
    with RunLock(run):  # a live holder (flock on another open file: refused even within one process)
        assert main(["fit", "--out", str(run), "--resume", "--steps", "6", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"in use by process {os.getpid()}" in err and err.count("\n") == 1
    assert _metrics_steps(run) == [1, 2, 3, 4, 5]


def test_two_processes_on_one_out(tmp_path, capsys):
    """A second fit (another seed) and a concurrent --resume are refused while the first runs; the first
    finishes with its own config, weights and metrics; after a kill -9, --resume takes the stale lock."""
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "neurocwm", "fit", "--out", str(out), *TINY, "--steps", "400"]
    cmd += ["--checkpoint-every", "1", "--seed", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (out / "checkpoints" / "latest.json").exists():
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
        assert main(["fit", "--out", str(out), *TINY, "--steps", "3", "--seed", "0", "--force"]) == 2
        err = capsys.readouterr().err
        assert f"in use by process {proc.pid}" in err and err.count("\n") == 1
        assert main(["fit", "--out", str(out), "--resume", "--no-progress"]) == 2
        assert f"in use by process {proc.pid}" in capsys.readouterr().err
        assert json.loads((out / "config.json").read_text())["seed"] == 1
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    assert (out / ".lock").exists()  # left by the killed process; the kernel released its flock
    step = int(latest_checkpoint(out).name.split("_")[1])
    assert main(["fit", "--out", str(out), "--resume", "--steps", str(step + 1), "--no-progress"]) == 0
    assert json.loads((out / "config.json").read_text())["seed"] == 1
    assert _metrics_steps(out) == list(range(1, step + 2))
    assert load_file(str(out / "model.safetensors"))["trunk.conv1.weight"].shape[0] == 16


def test_export_zip_has_models_at_its_top(base_run, tmp_path):
    """The README's layout: ``models/<id>/...``, no extra top folder; the weights file is world-readable
    under umask 022."""
    import zipfile

    from neurocwm.brainscore_export import export_plugin

    old = os.umask(0o022)
    try:
        res = export_plugin(base_run, weights_url="file:///x.pt", out=tmp_path / "s.zip", weights_out=tmp_path / "w.pt")
    finally:
        os.umask(old)
    with zipfile.ZipFile(res["zip"]) as zf:
        names = set(zf.namelist())
    ident = res["identifier"]
    assert names == {
        f"models/{ident}/{p}"
        for p in ("__init__.py", "model.py", "test.py", "requirements.txt", f"region_layer_map/{ident}.json")
    }
    assert set(res["files"]) == names
    assert stat.S_IMODE((tmp_path / "w.pt").stat().st_mode) == 0o644


def _planted_v4(seed=0, n=120, n_rep=3):
    """'early' (a retina layer on the sheet) drives the V4 neuroids; 'mid' (mapped to V4) drives them weakly."""
    import numpy as np

    from neurocwm.assemblies import make_assembly

    rng = np.random.default_rng(seed)
    layers = {name: rng.normal(size=(n, 30)) for name in ("early", "mid", "late")}
    signal = layers["early"][:, :4] @ rng.normal(size=(4, 6)) + 0.5 * layers["mid"][:, :4] @ rng.normal(size=(4, 6))
    trials = signal[:, None, :] + 0.5 * signal.std(0) * rng.normal(size=(n, n_rep, 6))
    ids = np.array([f"s{i:03d}" for i in range(n)])
    asm = make_assembly(
        trials.reshape(-1, 6), np.repeat(ids, n_rep), repetition=np.tile(np.arange(n_rep), n), region=["V4"] * 6
    )
    return layers, asm


def test_commitment_stays_within_the_areas_mapped_layers():
    from neurocwm.predict import commit_layers, mapped_layers

    layers, asm = _planted_v4()
    areas = {"early": "retina", "mid": "V4", "late": "VTC"}
    assert mapped_layers(areas, "V4") == ["mid"] and mapped_layers(areas, "IT") == ["late"]
    free = commit_layers(layers, asm, metric="ridge", progress=False, ceiling=False)
    assert free["region_layer_map"] == {"V4": "early"}  # the planted best, over all layers
    res = commit_layers(
        layers, asm, metric="ridge", progress=False, ceiling=False, candidates={"V4": mapped_layers(areas, "V4")}
    )
    c = res["commitments"]["V4"]
    assert c["layer"] == "mid" and c["best_overall"] == "early" and c["candidates"] == ["mid"]
    assert res["layers"] == free["layers"]  # the same selection scores, only the choice differs


def test_export_moves_a_commitment_outside_the_sheet_area(base_run, tmp_path):
    """An older predictivity file that committed V4 to a retina block is not carried into the submission."""
    from neurocwm.brainscore_export import export_plugin

    run = _copy(base_run, tmp_path)
    areas = json.loads((run / "positions" / "positions.json").read_text())["layers"]
    v4 = [k for k, v in areas.items() if v["area"] == "V4"]
    retina = next(k for k, v in areas.items() if v["area"] == "retina")
    scores = {k: {"value": 0.1, "error": 0.0} for k in areas}
    scores[retina]["value"], scores[v4[-1]]["value"] = 0.9, 0.5
    (run / "predictivity").mkdir()
    (run / "predictivity" / "old.json").write_text(
        json.dumps(
            {"region_layer_map": {"V4": retina}, "layers": {"V4": scores}, "weights": str(run / "model.safetensors")}
        )
    )
    with pytest.warns(UserWarning, match=f"commits V4 to {retina}"):
        res = export_plugin(run, weights_url="file:///x.pt", out=tmp_path / "s.zip")
    assert res["region_layer_map"]["V4"] == v4[-1]


def test_progress_is_line_wise_when_not_a_terminal():
    import io

    from neurocwm.progress import LineProgress, progress_bar

    buf = io.StringIO()
    bar = progress_bar(total=3, desc="x", file=buf, mininterval=0)
    assert isinstance(bar, LineProgress)
    for _ in range(3):
        bar.update(1)
    bar.close()
    text = buf.getvalue()
    assert "\r" not in text and text.endswith("\n")
    assert text.splitlines()[-1].startswith("x: 100%") and "3/3" in text.splitlines()[-1]


def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path):
    import numpy as np
    from PIL import Image

    from neurocwm.data.folder import to_rgb

    a = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)  # 0 .. 63000
    Image.fromarray(a).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode.startswith("I")
        rgb = np.asarray(to_rgb(im))
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
    assert np.array_equal(rgb[..., 0], np.round(a * 255.0 / 65535).astype(np.uint8))


def test_bad_images_are_skipped_and_counted_once(tmp_path, capsys):
    """A corrupt file and one above Pillow's decompression-bomb limit, seen in each of 2 epochs: one line each
    (no Python source line), and 'skipped 2' at the end."""
    import numpy as np
    from PIL import Image

    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray((rng.random((40, 40, 3)) * 255).astype(np.uint8)).save(data / f"{i}.png")
    (data / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    Image.new("L", (3000, 3000)).save(data / "huge.png")
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 2000  # 3000 x 3000 is more than twice the limit: a DecompressionBombError
    try:
        out = tmp_path / "run"
        with pytest.warns(UserWarning, match=r"skipped 2 unreadable image file\(s\)"):
            assert main(["fit", "--out", str(out), *TINY, "--data", str(data), "--epochs", "2", "--workers", "0"]) == 0
    finally:
        Image.MAX_IMAGE_PIXELS = old
    err = capsys.readouterr().err
    assert err.count("skipping unreadable image") == 2 and "corrupt.png" in err and "huge.png" in err
    assert "warnings.warn" not in err and "Traceback" not in err


def test_busy_cores_counts_the_jobs_running_now_not_the_load_average(tmp_path):
    from neurocwm.threads import busy_cores

    f = tmp_path / "loadavg"
    f.write_text("1.95 1.20 0.60 1/412 99\n")  # a high 1-minute average, nothing else running now
    assert busy_cores(samples=3, interval=0, path=str(f)) == 0.0
    f.write_text("0.05 0.02 0.00 3/412 99\n")  # two other tasks running now, low average
    assert busy_cores(samples=3, interval=0, path=str(f)) == 2.0
    f.write_text("garbage\n")
    assert busy_cores(samples=2, interval=0, path=str(f)) >= 0.0  # unreadable: the load average
    if not os.path.exists("/proc/loadavg"):
        return
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        assert busy_cores(samples=20, interval=0.01) >= 0.5  # the spinning process is seen at once
    finally:
        spin.kill()
        spin.wait()


def test_thread_defaults_follow_the_free_cores():
    from neurocwm.threads import (
        AUTO_MARK,
        configure_threads,
        default_threads,
        user_chose_threads,
    )

    assert [default_threads(2, load) for load in (0.0, 0.4, 0.6, 1.0, 2.0, 7.5)] == [2, 2, 1, 1, 1, 1]
    assert default_threads(16, 4.2) == 12 and default_threads(4, float("nan")) == 4
    env = {}
    n = configure_threads(None, env)
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and env["OMP_NUM_THREADS"] == env[AUTO_MARK]
    assert not user_chose_threads(env)
    assert n >= 1
    env = {"OMP_NUM_THREADS": "3", "OMP_WAIT_POLICY": "ACTIVE"}
    configure_threads(None, env)
    assert env["OMP_NUM_THREADS"] == "3" and env["OMP_WAIT_POLICY"] == "ACTIVE" and user_chose_threads(env)
    before = torch.get_num_threads()
    try:
        assert configure_threads(1, {}) == 1 and torch.get_num_threads() == 1  # --threads applies at once
        torch.set_num_threads(2)
        configure_threads(None, {})  # a caller's own setting is kept when torch already runs
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_neighborhoods_are_stored_as_a_recipe_and_regenerated_exactly(tmp_path):
    """The run folder no longer holds the neighbourhood arrays (most of a quick run's 319 MB): load_sheet
    regenerates exactly the arrays build_sheet made, checked against their SHA-256; a version-1 file
    (arrays stored) still loads, and a recipe that no longer reproduces them is refused."""
    import dataclasses

    import numpy as np
    from safetensors import safe_open
    from safetensors.numpy import load_file as load_np
    from safetensors.numpy import save_file as save_np

    from neurocwm.models import create_model
    from topography.sheet import CorticalSheet, build_sheet
    from topography.sheet_io import load_sheet, save_sheet

    dims = create_model("resnet18_w16").block_dims(32)
    sheet = build_sheet(dims, n_windows=300, seed=3)
    path = save_sheet(sheet, tmp_path / "pos")
    assert set(load_np(str(path))) == {f"{n}.coordinates" for n in dims}  # no neighbourhood tensor
    back = load_sheet(tmp_path / "pos")
    for name, layer in sheet.layers.items():
        assert back[name].neighborhoods.dtype == np.int64
        assert np.array_equal(back[name].neighborhoods, layer.neighborhoods), name
        assert np.array_equal(back[name].coordinates, layer.coordinates)
    arrays = sum(layer.neighborhoods.nbytes for layer in sheet)
    assert path.stat().st_size < 0.1 * arrays
    # opened for positions only (as an analysis does), then filled, and saved again unchanged
    from topography.sheet_io import ensure_neighborhoods

    lazy = load_sheet(tmp_path / "pos", neighborhoods=False)
    assert lazy["layer4.1"].neighborhoods.shape == (0, sheet["layer4.1"].neighborhoods.shape[1])
    save_sheet(lazy, tmp_path / "again")
    assert np.array_equal(ensure_neighborhoods(lazy["layer2.0"]).neighborhoods, sheet["layer2.0"].neighborhoods)
    assert all(np.array_equal(load_sheet(tmp_path / "again")[n].neighborhoods, sheet[n].neighborhoods) for n in dims)
    # version 1: the arrays themselves
    plain = CorticalSheet(
        {n: dataclasses.replace(lay, neighborhood_recipe=None) for n, lay in sheet.layers.items()}, sheet.meta
    )
    save_sheet(plain, tmp_path / "v1")
    assert json.loads((tmp_path / "v1" / "positions.json").read_text())["version"] == 1
    assert all(np.array_equal(load_sheet(tmp_path / "v1")[n].neighborhoods, sheet[n].neighborhoods) for n in dims)
    # a recipe that does not reproduce the recorded arrays
    with safe_open(str(path), framework="numpy") as fh:
        desc = json.loads(fh.metadata()["sheet"])
    desc["layers"]["layer3.0"]["neighborhood_recipe"]["seed"] += 1
    save_np(load_np(str(path)), str(path), metadata={"sheet": json.dumps(desc)})
    with pytest.raises(ValueError, match="layer3.0 regenerated from their seed differ"):
        load_sheet(tmp_path / "pos")


def test_run_folder_is_a_small_multiple_of_the_weights(base_run):
    total = sum(p.stat().st_size for p in base_run.rglob("*") if p.is_file())
    weights = (base_run / "model.safetensors").stat().st_size
    assert (base_run / "positions" / "positions.safetensors").stat().st_size < weights / 4
    assert total < 8 * weights  # final weights + 2 checkpoints (weights and momentum) + small files
