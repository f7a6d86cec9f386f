"""Fuzzing every sub-command with bad input (issue 16): invalid numbers, NaN / inf, empty strings,
missing files, files for folders and folders for files, damaged files. Each must end with one line
``neurocwm CMD: error: ...`` (or argparse's ``neurocwm CMD: error: ...``), exit code 2, nothing
written, never a traceback. All calls run in-process and fail before any heavy work."""

from __future__ import annotations

import shlex
import shutil

import numpy as np
import pytest
import torch
from conftest import TINY, train_smoke_cwm
from PIL import Image

from neurocwm.cli import main


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny TDANN run, a tiny CWM run, and an assortment of good and bad files."""

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("fuzz")
    assert main(["fit", "--out", str(root / "run"), *TINY, "--steps", "1"]) == 0
    train_smoke_cwm(root / "cwm")
    frames = root / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(frames / f"f{i}.png")
    badframes = root / "badframes"
    badframes.mkdir()
    (badframes / "a.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    shutil.copy(frames / "f1.png", badframes / "b.png")
    (root / "text.txt").write_text("hello\n")
    (root / "bad.mat").write_bytes(b"MATLAB 5.0 MAT-file" + bytes(200))
    (root / "garbage.mat").write_text("not a mat file at all")
    (root / "bad.nc").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    (root / "bad.npz").write_bytes(b"PK\x03\x04broken")
    (root / "bad.json").write_text("{ not json")
    (root / "latin1.json").write_bytes(b'{"a": "\xe9"}')
    (root / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    (root / "empty").mkdir()
    broken = root / "broken_run"
    shutil.copytree(root / "run", broken)
    (broken / "model.safetensors").write_bytes(b"\x10\0\0\0\0\0\0\0{not a header}")
    badcfg = root / "badcfg_run"
    shutil.copytree(root / "run", badcfg)
    (badcfg / "config.json").write_bytes(b'{"arch": \xff\xfe}')
    return root


def _cases():
    """Each case's argv from its command line (split as a shell would): ``{R}``, ``{T}``, ... stand for the
    files below, ``{TINY}`` for the tiny fit options; ``{root}`` is filled in by the test."""
    names = dict(R="{root}/run", C="{root}/cwm", F0="{root}/frames/f0.png", F1="{root}/frames/f1.png")
    names.update(FR="{root}/frames", T="{root}/text.txt", M="{root}/missing", D="{root}/empty", U="file:///x.pt")
    names.update(root="{root}", HUGE=str(2**70))
    lines = {
        # fit: numbers, empty strings, paths
        "fit-steps-word": "fit --out {root}/new --steps ten",
        "fit-epochs-inf": "fit --out {root}/new --epochs inf",
        "fit-epochs-nan": "fit --out {root}/new --epochs nan",
        "fit-lr-nan": "fit --out {root}/new --lr nan",
        "fit-lr-neg": "fit --out {root}/new --lr -0.1",
        "fit-nps-neg": "fit --out {root}/new --neighborhoods-per-step -1",
        "fit-jitter-nan": "fit --out {root}/new --position-jitter nan",
        "fit-ckpt-neg": "fit --out {root}/new --checkpoint-every -1",
        "fit-seed-huge": "fit --out {root}/new --seed {HUGE}",
        "fit-data-empty": "fit --out {root}/new --data ''",
        "fit-data-file": "fit --out {root}/new --data {T}",
        "fit-data-missing": "fit --out {root}/new --data {M}",
        "fit-positions-empty": "fit --out {root}/new --positions ''",
        "fit-positions-dir": "fit --out {root}/new --positions {D}",
        "fit-positions-text": "fit --out {root}/new {TINY} --positions {T}",
        "fit-out-file": "fit --out {T} {TINY} --steps 1",
        "fit-out-below-file": "fit --out {T}/sub {TINY} --steps 1",
        "fit-out-empty": "fit --out ''",
        "fit-init-missing": "fit --out {root}/new {TINY} --init-from {M}",
        "fit-init-broken": "fit --out {root}/new {TINY} --init-from {root}/broken_run/model.safetensors",
        "fit-resume-badcfg": "fit --out {root}/badcfg_run --resume",
        "fit-resume-nothing": "fit --out {D} --resume",
        "fit-cwm-fps0": "fit --model cwm --out {root}/new --fps 0",
        "fit-cwm-spot-nan": "fit --model cwm --out {root}/new --spot-density nan",
        "fit-cwm-camera-2": "fit --model cwm --out {root}/new --camera-prob 2",
        "fit-tdann-cwm-option": "fit --out {root}/new --spot-density 1",
        "threads-0": "--threads 0 fit --out {root}/new",
        # demo (checked before its first stage writes anything)
        "demo-out-file": "demo --out {T}",
        "demo-warmup-0": "demo --out {root}/newdemo --warmup-steps 0",
        "demo-steps-nan": "demo --out {root}/newdemo --steps nan",
        "demo-alpha-neg": "demo --out {root}/newdemo --alpha -1",
        "demo-seed-neg": "demo --out {root}/newdemo --seed -1",
        "demo-ringach-missing": "demo --out {root}/newdemo --ringach {M}",
        "demo-floc-file": "demo --out {root}/newdemo --floc {T}",
        "demo-arch-unknown": "demo --out {root}/newdemo --arch nope --no-progress",
        # positions optimize
        "pos-missing-run": "positions optimize {M}",
        "pos-run-is-file": "positions optimize {T}",
        "pos-steps-neg": "positions optimize {R} --steps -5",
        "pos-spw-0": "positions optimize {R} --steps-per-window 0",
        "pos-batch-0": "positions optimize {R} --batch-size 0",
        "pos-seed-neg": "positions optimize {R} --seed -1",
        "pos-out-file": "positions optimize {R} --out {T} --steps 10",
        "pos-layer-unknown": "positions optimize {R} --layers nope --steps 10",
        "pos-ckpt-missing": "positions optimize {R} --checkpoint {M}",
        "pos-broken-weights": "positions optimize {root}/broken_run --steps 10",
        "pos-badcfg": "positions optimize {root}/badcfg_run --steps 10",
        # score
        "score-missing-run": "score {M}",
        "score-run-is-file": "score {T}",
        "score-per-cat-0": "score {R} --per-category 0",
        "score-per-cat-neg": "score {R} --per-category -1",
        "score-wiring-0": "score {R} --wiring-images 0",
        "score-dim-neg": "score {R} --dim-images -3",
        "score-batch-0": "score {R} --batch-size 0",
        "score-out-file": "score {R} --out {T} --only dimensionality",
        "score-ringach-garbage": "score {R} --only v1 --ringach {root}/garbage.mat",
        "score-ringach-badmat": "score {R} --only v1 --ringach {root}/bad.mat",
        "score-ringach-dir": "score {R} --only v1 --ringach {D}",
        "score-floc-file": "score {R} --only vtc --floc {T}",
        "score-images-file": "score {R} --only dimensionality --images {T}",
        "score-broken-weights": "score {root}/broken_run",
        "score-badcfg": "score {root}/badcfg_run",
        "score-v1-layer-unknown": "score {R} --only v1 --v1-layers nope",
        # predict
        "pred-missing-run": "predict {M} --neural {M}",
        "pred-neural-missing": "predict {R} --neural {M}",
        "pred-neural-badnc": "predict {R} --neural {root}/bad.nc",
        "pred-neural-text": "predict {R} --neural {T}",
        "pred-neural-empty": "predict {R} --neural ''",
        "pred-responses-garbage": "predict {R} --neural {FR} --responses {root}/garbage.mat",
        "pred-responses-badmat": "predict {R} --neural {FR} --responses {root}/bad.mat",
        "pred-responses-missing": "predict {R} --neural {FR} --responses {M}",
        "pred-responses-dir": "predict {R} --neural {FR} --responses {D}",
        "pred-nsplits-1000": "predict {R} --neural {FR} --n-splits 1000",
        "pred-nsplits-0": "predict {R} --neural {FR} --n-splits 0",
        "pred-test-size-nan": "predict {R} --neural {FR} --test-size nan",
        "pred-test-size-1": "predict {R} --neural {FR} --test-size 1",
        "pred-batch-0": "predict {R} --neural {FR} --batch-size 0",
        "pred-maxunits-neg": "predict {R} --neural {FR} --max-units -1",
        "pred-broken-weights": "predict {root}/broken_run --neural {M}",
        "pred-builtin-unknown": "predict {R} --neural nosuch:thing",
        # brainscore export
        "bs-missing-run": "brainscore export {M} --weights-url {U} --out {root}/s.zip",
        "bs-out-dir": "brainscore export {R} --weights-url {U} --out {D}",
        "bs-url-empty": "brainscore export {R} --weights-url '' --out {root}/s.zip",
        "bs-deg-nan": "brainscore export {R} --weights-url {U} --out {root}/s.zip --visual-degrees nan",
        "bs-deg-0": "brainscore export {R} --weights-url {U} --out {root}/s.zip --visual-degrees 0",
        "bs-rlm-garbage": "brainscore export {R} --weights-url {U} --out {root}/s.zip --region-layer-map V4",
        "bs-rlm-badjson": "brainscore export {R} --weights-url {U} --out {root}/s.zip --region-layer-map {root}/bad.json",
        "bs-rlm-latin1": "brainscore export {R} --weights-url {U} --out {root}/s.zip --region-layer-map {root}/latin1.json",
        "bs-broken-weights": "brainscore export {root}/broken_run --weights-url {U} --out {root}/s.zip",
        # cwm readouts and eval
        "cwm-missing-run": "cwm predict {M} {F0} {F1}",
        "cwm-tdann-run": "cwm predict {R} {F0} {F1}",
        "cwm-missing-frame": "cwm predict {C} {F0} {M}",
        "cwm-corrupt-frame": "cwm predict {C} {F0} {root}/bad.png",
        "cwm-corrupt-in-folder": "cwm predict {C} {root}/badframes",
        "cwm-text-frame": "cwm flow {C} {F0} {T}",
        "cwm-out-file": "cwm predict {C} {F0} {F1} --out {T}",
        "cwm-nvisible-neg": "cwm predict {C} {F0} {F1} --n-visible -1",
        "cwm-visfrac-nan": "cwm predict {C} {F0} {F1} --visible-fraction nan",
        "cwm-flow-radius-nan": "cwm flow {C} {F0} {F1} --search-radius nan",
        "cwm-flow-occl-nan": "cwm flow {C} {F0} {F1} --occlusion-threshold nan",
        "cwm-flow-masks-0": "cwm flow {C} {F0} {F1} --n-masks 0",
        "cwm-flow-stride-0": "cwm flow {C} {F0} {F1} --stride 0",
        "cwm-flow-zoom-neg": "cwm flow {C} {F0} {F1} --zoom-iters -1",
        "cwm-seg-threshold-nan": "cwm segment {C} {F0} --threshold nan",
        "cwm-seg-samples-0": "cwm segment {C} {F0} --n-samples 0",
        "cwm-seg-moves": "cwm segment {C} {F0} --min-move 5 --max-move 2",
        "cwm-seg-point": "cwm segment {C} {F0} --point nan,3",
        "cwm-kp-candidates-0": "cwm keypoints {C} {F0} {F1} --n-candidates 0",
        "cwm-kp-k-0": "cwm keypoints {C} {F0} {F1} --k 0",
        "cwm-start-neg": "cwm predict {C} {FR} --start -1",
        "cwm-seed-neg": "cwm predict {C} {F0} {F1} --seed -1",
        "cwm-eval-pairs-0": "cwm eval {C} --n-pairs 0",
        "cwm-eval-visfrac-nan": "cwm eval {C} --visible-fraction nan",
        "cwm-eval-out-file": "cwm eval {C} --out {T} --n-pairs 1 --points-per-pair 1",
        # fmri compare
        "fmri-missing-subjects": "fmri compare {root}/bad.npz --subjects {M}",
        "fmri-bad-npz": "fmri compare {root}/bad.npz --subjects {D}",
        "fmri-smooth-0": "fmri compare {R} --subjects {D} --smoothness-samples 0",
        "fmri-per-cat-0": "fmri compare {R} --subjects {D} --per-category 0",
        "fmri-bad-json-subject": "fmri compare {root}/bad.npz --subjects {root}/bad.json",
        # figures
        "fig-out-empty": "figures {R} --out ''",
        "fig-out-file": "figures {R} --out {T}",
        "fig-maps-missing": "figures --maps {root}/nonexistent.npz --out {root}/figs",
        "fig-maps-bad": "figures --maps {root}/bad.npz --out {root}/figs",
        "fig-run-missing": "figures {M} --out {root}/figs",
        "fig-bad-json": "figures {root}/bad.json --out {root}/figs",
        "fig-human-bad": "figures {R} --human {root}/bad.json --out {root}/figs",
        # import
        "import-nothing": "import",
        "import-tdann-missing": "import tdann {M} --positions {FR} --out {root}/imp",
        "import-tdann-text": "import tdann {T} --positions {FR} --out {root}/imp",
        "import-tdann-folder": "import tdann {FR} --positions {FR} --out {root}/imp",
        "import-tdann-bad-positions": "import tdann {root}/bad.npz --positions {T} --out {root}/imp",
        "import-tdann-unknown-name": "import tdann no-such-model --out {root}/imp",
        "import-tdann-empty": "import tdann '' --out {root}/imp",
        "import-toponets-text": "import toponets {T} --out {root}/imp",
        "import-toponets-pickle": "import toponets {root}/bad.json --out {root}/imp",
        "import-toponets-bad-size": "import toponets {T} --image-size nan --out {root}/imp",
        "import-cwm-text": "import cwm {T} --out {root}/imp",
        "import-cwm-npz": "import cwm {root}/bad.npz --out {root}/imp",
        "import-cwm-folder": "import cwm {FR} --out {root}/imp",
        "import-cwm-run": "import cwm {root}/run/model.safetensors --out {root}/imp",
        "import-cwm-out-file": "import cwm {root}/run/model.safetensors --out {T}",
        "import-cwm-variant": "import cwm {T} --variant vit-huge",
    }
    cases = {}
    for name, line in lines.items():
        cases[name] = []
        for arg in shlex.split(line):
            cases[name] += TINY if arg == "{TINY}" else [arg.format(**names)]
    return cases


CASES = _cases()


def _tree(root):
    return sorted(
        (str(p.relative_to(root)), p.stat().st_size if p.is_file() else -1, p.stat().st_mtime_ns)
        for p in root.rglob("*")
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_gives_one_line_and_exit_2(world, name, capsys, monkeypatch):
    monkeypatch.chdir(world)
    argv = [a.replace("{root}", str(world)) for a in CASES[name]]
    before = _tree(world)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2, (argv, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and " error: " in lines[0] and lines[0].startswith("neurocwm"), err
    assert "Traceback" not in err + out
    assert _tree(world) == before, "something was written"
