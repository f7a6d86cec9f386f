"""neurocwm.cli._args.call: options reach the library parameter of the same name."""

from __future__ import annotations

import argparse

import pytest

from neurocwm.cli._args import call


def _lib(run, *, seed=0, out=None, field_of_view_deg=None, progress=True):
    return {"run": run, "seed": seed, "out": out, "field_of_view_deg": field_of_view_deg, "progress": progress}


def test_same_names_renamed_and_defaults():
    args = argparse.Namespace(run="r", seed=7, out="o", field_of_view=9.0, unrelated=1)
    got = call(_lib, args, "R", field_of_view_deg=args.field_of_view)
    # positional given explicitly, seed/out by name, the renamed one from `given`, progress keeps its default
    assert got == {"run": "R", "seed": 7, "out": "o", "field_of_view_deg": 9.0, "progress": True}


def test_positional_parameters_are_not_taken_from_args():
    args = argparse.Namespace(run="from-args", seed=1)
    assert call(_lib, args, "explicit")["run"] == "explicit"


def test_unknown_given_parameter_is_refused():
    with pytest.raises(TypeError, match="_lib takes no parameter n_windows"):
        call(_lib, argparse.Namespace(), "r", n_windows=3)
