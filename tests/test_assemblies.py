"""neurocwm.assemblies: construction, validation, averaging, alignment, netCDF round trips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from neurocwm.assemblies import (
    StimulusSet,
    align_to,
    average_repetitions,
    brainscore_available,
    check_same_ids,
    load_assembly,
    make_assembly,
    save_assembly,
    validate_assembly,
)


def _stim(n=6, tmp_path=None):
    paths = None
    if tmp_path is not None:
        from PIL import Image

        paths = []
        for i in range(n):
            p = tmp_path / f"img{i}.png"
            Image.new("RGB", (8, 8), (i * 20, 0, 0)).save(p)
            paths.append(str(p))
    return StimulusSet.from_records(
        [f"s{i}" for i in range(n)], paths, identifier="toy", object_name=["a", "b"] * (n // 2), size=np.arange(n) * 1.5
    )


def test_make_assembly_coords_and_stimulus_metadata():
    stim = _stim()
    vals = np.arange(12.0).reshape(6, 2)
    asm = make_assembly(vals, stimulus_id=stim.stimulus_ids, neuroid_id=["n0", "n1"], region="IT", stimulus_set=stim)
    assert asm.dims == ("presentation", "neuroid")
    assert list(asm["object_name"].values) == ["a", "b"] * 3
    assert list(asm["region"].values) == ["IT", "IT"]
    assert asm.attrs["stimulus_set_identifier"] == "toy"
    np.testing.assert_array_equal(asm.values, vals)


def test_time_bins():
    asm = make_assembly(np.zeros((3, 2, 4)), ["a", "b", "c"], time_bins=[(0, 10), (10, 20), (20, 30), (30, 40)])
    assert asm.dims == ("presentation", "neuroid", "time_bin")
    np.testing.assert_array_equal(asm["time_bin_end"].values, [10, 20, 30, 40])
    with pytest.raises(ValueError, match="time_bins"):
        make_assembly(np.zeros((3, 2, 4)), ["a", "b", "c"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(values=np.zeros((3, 2)), stimulus_id=["a", "a", "b"]), "duplicate stimulus_id"),
        (dict(values=np.zeros((3, 2)), stimulus_id=["a", "b", "c"], neuroid_id=["n", "n"]), "duplicate neuroid_id"),
        (dict(values=np.array([[0, np.nan], [1, 2], [3, 4]]), stimulus_id=["a", "b", "c"]), "NaN"),
        (dict(values=np.zeros((3, 2)), stimulus_id=["a", "b"]), "shape"),
        (dict(values=np.zeros((3, 2)), stimulus_id=["a", "b", "c"], neuroid_id=["n0"]), "shape"),
        (dict(values=np.zeros(3), stimulus_id=["a", "b", "c"]), "2-D"),
        (dict(values=np.zeros((2, 2)), stimulus_id=["a", "a"], repetition=[0, 0]), r"\(stimulus_id, repetition\)"),
    ],
)
def test_validation_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_assembly(**kwargs)


def test_stimulus_ids_missing_from_stimulus_set():
    stim = _stim(4)
    with pytest.raises(ValueError, match="not in the stimulus set"):
        make_assembly(np.zeros((2, 1)), ["s0", "zzz"], stimulus_set=stim)


def test_validate_rejects_wrong_dims_and_missing_coords():
    with pytest.raises(ValueError, match="dims"):
        validate_assembly(xr.DataArray(np.zeros((2, 2)), dims=("x", "y")))
    with pytest.raises(ValueError, match="neuroid_id"):
        validate_assembly(
            xr.DataArray(
                np.zeros((2, 2)), dims=("presentation", "neuroid"), coords={"stimulus_id": ("presentation", ["a", "b"])}
            )
        )


def test_repetitions_allowed_and_averaged():
    vals = np.array([[1.0, 10], [3, 30], [5, 50], [7, 70]])
    asm = make_assembly(
        vals,
        ["b", "a", "b", "a"],
        repetition=[0, 0, 1, 1],
        presentation_coords={"object_name": ["x", "y", "x", "y"], "trial_time": [1, 2, 3, 4]},
    )
    avg = average_repetitions(asm)
    assert list(avg["stimulus_id"].values) == ["b", "a"]  # order of first appearance
    np.testing.assert_allclose(avg.values, [[3, 30], [5, 50]])
    assert list(avg["object_name"].values) == ["x", "y"]
    assert "trial_time" not in avg.coords and "repetition" not in avg.coords


def test_align_to_reorders_and_refuses_mismatch():
    asm = make_assembly(np.arange(6.0).reshape(3, 2), ["a", "b", "c"])
    out = align_to(asm, ["c", "a", "b"])
    np.testing.assert_array_equal(out.values[:, 0], [4, 0, 2])
    with pytest.raises(ValueError, match="only in"):
        align_to(asm, ["a", "b", "d"])
    with pytest.raises(ValueError, match="duplicate"):
        check_same_ids(["a", "a", "b"], ["a", "b", "c"])


def test_netcdf_round_trip_with_stimulus_set(tmp_path):
    stim = _stim(6, tmp_path)
    rng = np.random.default_rng(0)
    asm = make_assembly(
        rng.normal(size=(12, 3)),
        list(stim.stimulus_ids) * 2,
        ["n0", "n1", "n2"],
        repetition=[0] * 6 + [1] * 6,
        region=["V4", "V4", "IT"],
        stimulus_set=stim,
        attrs={"dataset": "toy", "version": 3},
    )
    path = tmp_path / "sub" / "asm.nc"
    save_assembly(asm, path)
    assert path.exists() and not list(path.parent.glob(".asm.nc.*"))  # atomic: no temp file left
    back = load_assembly(path)
    np.testing.assert_array_equal(back.values, asm.values)
    for name in asm.coords:
        np.testing.assert_array_equal(back[name].values, asm[name].values)
    assert back.attrs["dataset"] == "toy" and back.attrs["version"] == 3
    bstim = back.attrs["stimulus_set"]
    assert isinstance(bstim, StimulusSet)
    pd.testing.assert_frame_equal(bstim.table.astype(str), stim.table.astype(str))
    assert bstim.open_image("s3").getpixel((0, 0)) == (60, 0, 0)


def test_netcdf_round_trip_time_bins(tmp_path):
    asm = make_assembly(
        np.arange(24.0).reshape(3, 2, 4), ["a", "b", "c"], time_bins=[(0, 50), (50, 100), (100, 150), (150, 200)]
    )
    save_assembly(asm, tmp_path / "t.nc")
    back = load_assembly(tmp_path / "t.nc")
    assert back.dims == asm.dims
    np.testing.assert_array_equal(back["time_bin_start"].values, [0, 50, 100, 150])
    np.testing.assert_array_equal(back.values, asm.values)


def test_failed_save_leaves_old_file(tmp_path, monkeypatch):
    path = tmp_path / "a.nc"
    asm = make_assembly(np.ones((2, 2)), ["a", "b"])
    save_assembly(asm, path)
    real = xr.Dataset.to_netcdf

    def write_then_crash(self, target, *args, **kwargs):
        real(self, target, *args, **kwargs)
        raise RuntimeError("killed mid-save")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", write_then_crash)
    with pytest.raises(RuntimeError, match="killed"):
        save_assembly(make_assembly(np.zeros((2, 2)), ["a", "b"]), path)
    monkeypatch.undo()
    np.testing.assert_array_equal(load_assembly(path).values, np.ones((2, 2)))
    assert [p.name for p in tmp_path.iterdir()] == ["a.nc"]


def test_load_missing_file_and_foreign_file(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        load_assembly(tmp_path / "nope.nc")
    xr.Dataset({"other": ("x", [1, 2])}).to_netcdf(tmp_path / "o.nc", engine="h5netcdf")
    with pytest.raises(ValueError, match="responses"):
        load_assembly(tmp_path / "o.nc")


def test_stimulus_set_subset_materialize_and_zip(tmp_path):
    import zipfile

    stim = _stim(4, tmp_path)
    with zipfile.ZipFile(tmp_path / "imgs.zip", "w") as zf:
        for sid, p in zip(stim.stimulus_ids, stim.paths):
            zf.write(p, arcname=f"top/{sid}.png")
    zstim = StimulusSet.from_records(
        stim.stimulus_ids, [f"{tmp_path / 'imgs.zip'}::top/{s}.png" for s in stim.stimulus_ids]
    )
    assert zstim.open_image("s2").getpixel((0, 0)) == (40, 0, 0)
    out = zstim.materialize(tmp_path / "mat")
    assert (tmp_path / "mat" / "s2.png").exists() and out.get_path("s2").endswith("s2.png")
    sub = stim.subset(["s3", "s1"])
    assert list(sub.stimulus_ids) == ["s3", "s1"]
    with pytest.raises(ValueError, match="not in stimulus set"):
        stim.subset(["s9"])
    with pytest.raises(ValueError, match="duplicate"):
        StimulusSet.from_records(["a", "a"])
    stim.to_csv(tmp_path / "s.csv")
    again = StimulusSet.from_csv(tmp_path / "s.csv")
    assert list(again.stimulus_ids) == list(stim.stimulus_ids)


def test_assembly_with_open_zip_stimuli_copies_and_pickles(tmp_path):
    """Deep copies (xarray's .copy()) and pickles (worker processes) of an assembly whose zip
    archive is open leave the handle behind and read the images again."""
    import copy
    import pickle
    import zipfile

    stim = _stim(4, tmp_path)
    with zipfile.ZipFile(tmp_path / "imgs.zip", "w") as zf:
        for sid, p in zip(stim.stimulus_ids, stim.paths):
            zf.write(p, arcname=f"{sid}.png")
    zstim = StimulusSet.from_records(
        stim.stimulus_ids,
        [f"{tmp_path / 'imgs.zip'}::{s}.png" for s in stim.stimulus_ids],
        object_name=["a", "b", "a", "c"],
    )
    pixel = zstim.open_image("s1").getpixel((0, 0))  # the archive is open now
    asm = make_assembly(np.arange(8.0).reshape(4, 2), zstim.stimulus_ids, stimulus_set=zstim)
    for other in (asm.copy(), copy.deepcopy(asm), pickle.loads(pickle.dumps(asm))):
        s2 = other.attrs["stimulus_set"]
        assert s2 is not zstim and s2.open_image("s1").getpixel((0, 0)) == pixel
        assert list(s2.table["object_name"]) == ["a", "b", "a", "c"]
        np.testing.assert_array_equal(other.values, asm.values)


def test_brainscore_conversion_skips_cleanly_without_brainscore():
    from neurocwm.assemblies import to_brainscore

    asm = make_assembly(np.ones((2, 2)), ["a", "b"])
    if brainscore_available():
        back = to_brainscore(asm)
        assert back.shape == (2, 2)
    else:
        with pytest.raises(ImportError, match="brainscore"):
            to_brainscore(asm)


def test_repetition_keys_do_not_collide_across_id_lengths():
    """("image1", repetition 10) and ("image11", repetition 0) are different trials: non-padded
    ids with 11+ repeats, as real sessions have them."""
    ids = [f"image{i}" for i in (1, 11)]
    sid = np.repeat(ids, 12)
    rep = np.tile(np.arange(12), 2)
    asm = make_assembly(np.arange(24.0)[:, None], sid, repetition=rep)
    assert asm.sizes["presentation"] == 24
    np.testing.assert_allclose(average_repetitions(asm).values[:, 0], [5.5, 17.5])
    # a true duplicate is still refused, and named as a plain Python pair
    with pytest.raises(
        ValueError,
        match=r"duplicate \(stimulus_id, repetition\) pairs: 1 repeated, e\.g\. "
        r"\('image11', 3\)$",
    ):
        make_assembly(np.zeros((3, 1)), ["image1", "image11", "image11"], repetition=[3, 3, 3])


def test_error_messages_show_plain_values_not_numpy_reprs():
    stim = _stim(4)
    messages = []
    for call in (
        lambda: make_assembly(np.zeros((2, 1)), np.array(["s0", "zzz"]), stimulus_set=stim),
        lambda: make_assembly(np.zeros((2, 1)), np.array(["a", "a"])),
        lambda: check_same_ids(np.array(["a", "b"]), np.array(["a", "c"])),
        lambda: stim.subset(np.array(["s0", "nope"])),
    ):
        with pytest.raises(ValueError) as info:
            call()
        messages.append(str(info.value))
    assert all("np." not in m for m in messages), messages
    assert "'zzz'" in messages[0] and "'a'" in messages[1] and "'b'" in messages[2] and "'nope'" in messages[3]


def test_average_repetitions_skipna_counts_nan_as_a_missing_trial():
    vals = np.array([[1.0, 10], [3, np.nan], [5, 50], [np.nan, np.nan]])
    asm = make_assembly(vals, ["a", "a", "b", "b"], repetition=[0, 1, 0, 1], allow_nan=True)
    np.testing.assert_allclose(average_repetitions(asm, skipna=True).values, [[2, 10], [5, 50]])
    assert np.isnan(average_repetitions(asm).values).any()  # default: Brain-Score's plain mean
    with pytest.raises(ValueError, match="--nan-policy missing"):
        validate_assembly(asm)
    with pytest.raises(ValueError, match="infinite"):
        make_assembly(np.array([[np.inf], [0.0]]), ["a", "b"])
