"""Tests of the Ringach et al. 2002 loader (synthetic .mat files and the real data base)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io as sio
from conftest import require_shared

from neurocwm.datasets.ringach import RINGACH_FIELDS, RINGACH_RELATIVE_PATH, load_ringach2002
from topography.constants import (
    RINGACH_FRACTION_SELECTIVE,
    RINGACH_MEDIAN_MAXDC,
    RINGACH_MEDIAN_ORIVAR,
    RINGACH_N_CELLS,
)
from topography.tuning import fraction_selective


def _write_db(path, n=4, drop=None, **overrides):
    rng = np.random.default_rng(0)
    fields = {name: rng.uniform(0, 1, (1, n)) for name in RINGACH_FIELDS}
    fields["expt"] = np.arange(n, dtype=np.uint8)[None, :]
    fields["unit"] = np.arange(n, dtype=np.uint8)[None, :] + 10
    fields["chan"] = np.ones((1, n), dtype=np.uint8)
    animal = np.empty((n, 1), dtype=object)
    for i in range(n):
        animal[i, 0] = f"M{i}"
    fields["animal"] = animal
    fields.update(overrides)
    if drop:
        fields.pop(drop)
    sio.savemat(path, {"db": fields})
    return fields


def test_synthetic_round_trip(tmp_path):
    path = tmp_path / "db.mat"
    fields = _write_db(path, n=5)
    db = load_ringach2002(path)
    assert list(db) == list(RINGACH_FIELDS)
    assert all(v.shape == (5,) for v in db.values())
    np.testing.assert_allclose(db["orivar"], fields["orivar"].ravel())
    assert db["unit"].tolist() == [10, 11, 12, 13, 14]
    assert db["unit"].dtype == np.int64
    assert db["animal"].tolist() == ["M0", "M1", "M2", "M3", "M4"]


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_ringach2002(tmp_path / "nope.mat")


def test_mat_without_db(tmp_path):
    path = tmp_path / "other.mat"
    sio.savemat(path, {"cells": np.ones(3)})
    with pytest.raises(ValueError, match="no 'db' variable.*cells"):
        load_ringach2002(path)


def test_not_a_mat_file(tmp_path):
    path = tmp_path / "junk.mat"
    path.write_bytes(b"this is not matlab" * 20)
    with pytest.raises(ValueError, match="not a readable MATLAB"):
        load_ringach2002(path)


def test_missing_field_and_ragged_fields(tmp_path):
    path = tmp_path / "db.mat"
    _write_db(path, drop="orivar")
    with pytest.raises(ValueError, match="lacks the fields.*orivar"):
        load_ringach2002(path)
    _write_db(path, n=4, bw=np.ones((1, 3)))
    with pytest.raises(ValueError, match="different lengths"):
        load_ringach2002(path)


def test_real_ringach_database():
    path = require_shared(*RINGACH_RELATIVE_PATH)
    db = load_ringach2002(path)
    n = db["orivar"].shape[0]
    assert n == RINGACH_N_CELLS == 308
    assert all(v.shape == (n,) for v in db.values())
    assert fraction_selective(db["orivar"]) == pytest.approx(0.497, abs=5e-4)
    assert fraction_selective(db["orivar"]) == pytest.approx(RINGACH_FRACTION_SELECTIVE)
    assert np.median(db["orivar"]) == pytest.approx(RINGACH_MEDIAN_ORIVAR, abs=5e-4)
    assert np.median(db["maxdc"]) == pytest.approx(RINGACH_MEDIAN_MAXDC, abs=5e-3)
    assert np.all((db["orivar"] > 0) & (db["orivar"] < 1))
    assert np.all(db["maxdc"] >= db["mindc"])
    assert len(set(db["animal"].tolist())) == 26
    assert set(np.unique(db["chan"]).tolist()) == {1, 2}
    assert np.all((db["rdepth"] > 0) & (db["rdepth"] <= 1))
