"""Long commands redirected to files print whole progress lines (no carriage returns) at a sensible rate, and a
skipped unreadable image is one warning line that counts files, not reads.

Each command runs in a subprocess with stdout and stderr written to files (not terminals), on a tiny run
trained here from an image folder holding exactly one corrupt file.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from neurocwm.progress import LineProgress, progress_bar

#: a progress line as LineProgress prints it: "desc:  42%|####      | 5/12 [...]"
BAR = re.compile(r"^[\w .()-]+: +\d+%\|[# 0-9]*\| *\d+/\d+ ")


def _run(args, tmp_path, name):
    """``python -m neurocwm ARGS`` with stdout / stderr redirected to files; (returncode, stdout, stderr)."""
    out, err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
    with open(out, "w") as fo, open(err, "w") as fe:
        rc = subprocess.run(
            [sys.executable, "-m", "neurocwm", *args],
            stdout=fo,
            stderr=fe,
            timeout=300,
            env=dict(os.environ, OMP_NUM_THREADS="1"),
            cwd=tmp_path,
            check=False,
        ).returncode
    return rc, out.read_text(), err.read_text()


def _check_lines(stdout, stderr):
    """No carriage return anywhere; every stderr line is a progress line or a one-line neurocwm message."""
    assert "\r" not in stdout and "\r" not in stderr
    for line in stderr.splitlines():
        assert BAR.match(line) or line.startswith(("neurocwm", "skipping unreadable image")), line
    return [line for line in stderr.splitlines() if BAR.match(line)]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A run fitted on 12 good images and 1 corrupt one (3 epochs: the bad file is met 3 times)."""
    tmp, rng = tmp_path_factory.mktemp("progress"), np.random.default_rng(0)
    images = tmp / "images"
    images.mkdir()
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(images / f"im{i:02d}.png")
    (images / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    argv = ["fit", "--out", str(tmp / "run"), "--arch", "resnet18_w16", "--image-size", "32", "--batch-size", "4"]
    argv += ["--neighborhood-windows", "300", "--steps", "9", "--seed", "0", "--data", str(images), "--workers", "0"]
    rc, out, err = _run(argv, tmp, "fit")
    assert rc == 0, err[-2000:]
    return {"tmp": tmp, "run": tmp / "run", "images": images, "fit": (out, err)}


def test_fit_skips_the_bad_file_in_whole_lines(fitted):
    out, err = fitted["fit"]
    bars = _check_lines(out, err)
    assert any(b.startswith("fit tdann: 100%|") for b in bars)
    assert err.count("skipping unreadable image") == 1  # met in each of 3 epochs, reported once
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert warnings == ["neurocwm: warning: skipped 1 unreadable image file(s) during training"]
    metrics = [json.loads(line) for line in (fitted["run"] / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["skipped_images"] == 1


@pytest.fixture(scope="module")
def scored(fitted):
    """``score`` of wiring and dimensionality on the image folder with the corrupt file (both read it)."""
    tmp = fitted["tmp"]
    rc, out, err = _run(
        [
            "score",
            str(fitted["run"]),
            "--only",
            "wiring",
            "dimensionality",
            "--images",
            str(fitted["images"]),
            "--wiring-images",
            "13",
            "--dim-images",
            "13",
            "--out",
            str(tmp / "score"),
        ],
        tmp,
        "score",
    )
    assert rc == 0, err[-2000:]
    return {"out": out, "err": err, "folder": tmp / "score"}


def test_score_with_one_bad_image(fitted, scored):
    """Wiring and dimensionality both read the folder: one warning line, one file skipped."""
    bars = _check_lines(scored["out"], scored["err"])
    assert any(b.startswith("score: 100%|") and "2/2" in b for b in bars)
    assert any(b.startswith("dimensionality responses:") for b in bars)
    warnings = [line for line in scored["err"].splitlines() if line.startswith("neurocwm")]
    expected = (
        f"neurocwm: warning: skipped 1 unreadable image(s) under {fitted['images']}, e.g. "
        f"{fitted['images'] / 'bad.png'}"
    )
    assert warnings == [expected]
    res = json.loads((scored["folder"] / "results.json").read_text())
    assert {r["metric"] for r in res["rows"]} >= {"wiring_length", "effective_dimensionality"}


def test_positions_and_figures_print_whole_lines(fitted, scored, tmp_path):
    rc, out, err = _run(
        [
            "positions",
            "optimize",
            str(fitted["run"]),
            "--steps",
            "100",
            "--layers",
            "layer2.0",
            "--out",
            str(tmp_path / "swapped"),
        ],
        tmp_path,
        "positions",
    )
    assert rc == 0, err[-2000:]
    bars = _check_lines(out, err)
    assert any(b.startswith("swapopt layer2.0: 100%|") for b in bars)
    rc, out, err = _run(
        ["figures", str(scored["folder"]), "--out", str(tmp_path / "figs"), "--formats", "png"], tmp_path, "figures"
    )
    assert rc == 0, err[-2000:]
    bars = _check_lines(out, err)
    assert bars and bars[-1].startswith("figures: 100%|")


def test_predict_refuses_a_folder_with_one_bad_image_in_one_line(fitted, tmp_path):
    """predict does not drop a stimulus that has responses: one error line, exit 2, nothing written."""
    np.save(tmp_path / "responses.npy", np.random.default_rng(1).normal(size=(13, 3)))
    rc, _, err = _run(
        [
            "predict",
            str(fitted["run"]),
            "--neural",
            str(fitted["images"]),
            "--responses",
            str(tmp_path / "responses.npy"),
            "--region",
            "IT",
            "--no-progress",
        ],
        tmp_path,
        "predict",
    )
    assert rc == 2
    assert "\r" not in err and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("neurocwm predict: error:")
    assert not (fitted["run"] / "predictivity").exists()


def test_line_progress_rate_and_messages():
    """Thousands of fast updates give the first and the final line only (30 s interval); a message written
    while the bar is open is a whole line, and the bar is not redrawn with carriage returns."""
    buf = io.StringIO()
    bar = progress_bar(total=20_000, desc="work", file=buf)
    assert isinstance(bar, LineProgress)
    for i in range(20_000):
        bar.update(1)
        if i == 10:
            bar.write("a message", file=buf)
    bar.close()
    lines = buf.getvalue().splitlines()
    assert "\r" not in buf.getvalue()
    assert lines[0].startswith("work:   0%|") and lines[1] == "a message"
    assert lines[-1].startswith("work: 100%|") and "20000/20000" in lines[-1]
    assert len(lines) <= 4
    quiet = io.StringIO()
    for _ in progress_bar(range(5), desc="off", file=quiet, disable=True):
        pass
    assert quiet.getvalue() == ""
