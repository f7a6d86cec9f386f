"""End-to-end tests of ``neurocwm fit`` on tiny settings (CPU)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import TINY
from safetensors.numpy import load_file

from neurocwm.cli import main


def _fit(tmp, *extra):
    return main(["fit", "--out", str(tmp), *TINY, *extra])


def test_smoke_run_folder_is_complete(tmp_path):
    out = tmp_path / "run"
    assert _fit(out, "--steps", "3", "--alpha", "0.5") == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["alpha"] == 0.5 and cfg["steps"] == 3 and cfg["seed"] == 0
    assert cfg["lr"] == pytest.approx(0.3 * 8 / 256)
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines] == [1, 2, 3]
    assert all(0 <= l[f"sl/layer{s}"] <= 1 for l in lines for s in ("1.0", "2.1", "4.1"))
    assert all(l["loss"] == pytest.approx(l["task_loss"] + 0.5 * 8 * l["spatial_loss"], rel=1e-4) for l in lines)
    w = load_file(str(out / "model.safetensors"))
    assert "trunk.conv1.weight" in w and "head.net.0.weight" in w
    assert (out / "positions" / "positions.safetensors").exists()
    assert json.loads((out / "model.json").read_text())["step"] == 3


def test_bad_input_clear_errors_and_no_output(tmp_path, capsys):
    cases = [
        (["--alpha", "-1"], "alpha"),
        (["--batch-size", "1"], "batch-size"),
        (["--data", str(tmp_path / "nope")], "does not exist"),
        (["--objective", "supervised"], "supervised"),
    ]
    for i, (args, msg) in enumerate(cases):
        out = tmp_path / f"r{i}"
        assert main(["fit", "--out", str(out), *TINY[:-1], "--steps", "1", *args]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1
        assert not out.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["fit", "--out", str(tmp_path / "re"), *TINY, "--data", str(empty)]) == 2
    assert "no image files" in capsys.readouterr().err


def test_out_folder_with_another_run_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert _fit(out, "--steps", "1") == 0
    before = (out / "model.safetensors").read_bytes()
    assert _fit(out, "--steps", "1", "--alpha", "1.0") == 2
    assert "--resume" in capsys.readouterr().err
    assert (out / "model.safetensors").read_bytes() == before
    assert _fit(out, "--steps", "2", "--alpha", "1.0", "--resume") == 2  # different settings
    assert "alpha" in capsys.readouterr().err
    assert _fit(out, "--steps", "1", "--alpha", "1.0", "--force") == 0
    assert json.loads((out / "config.json").read_text())["alpha"] == 1.0


def _cli(out, *args, **kw):
    # separate processes with the same thread count: CPU float reductions are only bitwise
    # reproducible for a fixed number of threads (other tests may change it in this process)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "2"}
    cmd = [sys.executable, "-m", "neurocwm", "fit", "--out", str(out), *TINY, *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def _finish(out, *args):
    """``_cli`` run to its end; its stderr is the failure message when it does not exit 0."""
    p = _cli(out, *args)
    assert p.wait() == 0, p.stderr.read()
    return out


def test_kill_and_resume_equals_uninterrupted(tmp_path):
    steps = ["--steps", "8", "--checkpoint-every", "2", "--alpha", "0.5"]
    ref = _finish(tmp_path / "ref", *steps)

    out = tmp_path / "killed"
    proc = _cli(out, *steps)
    latest = out / "checkpoints" / "latest.json"
    deadline = time.time() + 120
    while time.time() < deadline:
        if latest.exists() and json.loads(latest.read_text())["step"] >= 4:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "model.safetensors").exists(), "run finished before it could be killed"
    _finish(out, *steps, "--resume")
    a, b = load_file(str(ref / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] == b[k]).all(), k
    steps_logged = [json.loads(l)["step"] for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps_logged == list(range(1, 9))


def test_sigterm_checkpoints_the_current_step_then_resume_finishes(tmp_path):
    """SIGTERM (or Ctrl-C) stops at the end of the step with a checkpoint there, far from the
    --checkpoint-every boundary; --resume continues from it and equals an uninterrupted run."""
    steps = ["--steps", "40", "--checkpoint-every", "1000", "--alpha", "0.5"]
    ref = _finish(tmp_path / "ref", *steps)
    out = tmp_path / "run"
    proc = _cli(out, *steps)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 130
    assert not (out / "model.safetensors").exists(), "run finished before it was stopped"
    step = json.loads((out / "checkpoints" / "latest.json").read_text())["step"]
    logged = [json.loads(l)["step"] for l in metrics.read_text().splitlines()]
    assert 3 <= step < 40 and logged[-1] == step
    _finish(out, *steps, "--resume")
    a, b = load_file(str(ref / "model.safetensors")), load_file(str(out / "model.safetensors"))
    for k in a:
        assert (a[k] == b[k]).all(), k


def test_supervised_on_image_folder(tmp_path):
    import numpy as np
    from PIL import Image

    for c in range(3):
        d = tmp_path / "data" / f"class{c}"
        d.mkdir(parents=True)
        for i in range(4):
            Image.fromarray((np.random.default_rng(10 * c + i).random((40, 40, 3)) * 255).astype(np.uint8)).save(
                d / f"{i}.png"
            )
    out = tmp_path / "run"
    assert _fit(out, "--objective", "supervised", "--data", str(tmp_path / "data"), "--epochs", "2") == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["num_classes"] == 3 and cfg["steps"] == 2 and cfg["n_images"] == 12
    assert load_file(str(out / "model.safetensors"))["head.weight"].shape == (3, 128)


def test_two_process_ddp_on_cpu(tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "neurocwm"]
    cmd += ["fit", "--out", str(out), *TINY, "--steps", "3", "--alpha", "0.5"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["world_size"] == 2
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines] == [1, 2, 3]
    assert (out / "model.safetensors").exists()


def test_init_from_a_tdann_run(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    assert _fit(src, "--steps", "1") == 0
    assert _fit(dst, "--steps", "1", "--lr", "0", "--weight-decay", "0", "--init-from", str(src)) == 0
    a, b = load_file(str(src / "model.safetensors")), load_file(str(dst / "model.safetensors"))
    conv = "trunk.conv1.weight"  # no BatchNorm: its running statistics move even at lr 0
    assert (a[conv] == b[conv]).all()
    assert json.loads((dst / "config.json").read_text())["init_from"] == str(src.resolve() / "model.safetensors")
