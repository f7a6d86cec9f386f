"""The public namespace: ``neurocwm.<name>`` for the main functions, loaded lazily."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import TINY as TINY_ARGV

import neurocwm
from neurocwm.api import EXPORTS
from neurocwm.cli import main

TINY = dict(arch="resnet18_w16", image_size=32, batch_size=8, n_neighborhood_windows=300, progress=False)


def test_import_is_light_and_names_resolve():
    code = "import sys, neurocwm; print('torch' in sys.modules, sorted(neurocwm.__all__) == neurocwm.__all__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]
    assert set(neurocwm.__all__) == set(EXPORTS)
    for name in neurocwm.__all__:
        fn = getattr(neurocwm, name)
        assert callable(fn) and fn.__doc__ and "Parameters" in fn.__doc__, name
        assert name in dir(neurocwm)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        neurocwm.nope  # noqa: B018


def test_fit_equals_the_command_line(tmp_path):
    """Round trip: the keyword-argument call and the command line give bit-identical weights."""
    import torch
    from safetensors.torch import load_file

    threads = torch.get_num_threads()
    run = neurocwm.fit(out=str(tmp_path / "api"), steps=2, seed=3, alpha=0.5, **TINY)
    torch.set_num_threads(threads)
    assert run == tmp_path / "api" and (run / "config.json").is_file()
    assert (
        main(["fit", "--out", str(tmp_path / "cli"), "--steps", "2", "--seed", "3", "--alpha", "0.5", *TINY_ARGV]) == 0
    )
    a, b = load_file(run / "model.safetensors"), load_file(tmp_path / "cli" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fit_refuses_unknown_and_invalid_options(tmp_path):
    with pytest.raises(TypeError, match="unknown option 'alpah'"):
        neurocwm.fit(alpah=0.5)
    with pytest.raises(ValueError, match=r"fit\(\): argument --alpha: expected a number, got 'x'"):
        neurocwm.fit(alpha="x")
    with pytest.raises(ValueError, match="invalid choice: 'xx'"):
        neurocwm.fit(model="xx", out=str(tmp_path / "r"))
    assert not (tmp_path / "r").exists()
