"""neurocwm.fmri: readers give CorticalMaps that feed the topography metrics; planted patches;
GIfTI / NSD round trips; clear errors; `neurocwm fmri compare` end to end."""

from __future__ import annotations

import json
import warnings

import nibabel as nib
import numpy as np
import pytest
from nibabel.freesurfer import write_annot, write_geometry, write_morph_data

from neurocwm.fmri import (
    CorticalMap,
    compare_maps,
    human_params,
    load_gifti_surface,
    load_nsd_subjects,
    map_metrics,
    model_params,
    nifti_map,
    read_nsd_flatmap,
    read_patch,
    sample_volume,
    surface_map,
    write_gifti_data,
    write_gifti_map,
    write_gifti_surface,
    write_nsd_flatmap,
    write_patch,
)
from topography.patches import find_domain_patches, patch_areas, patch_counts

DOMAINS = ["Faces", "Bodies", "Characters", "Places", "Objects"]
FAST = dict(smooth_samples=2, smooth_units=200)


def _planted(shape=(60, 50)):
    """Two 15x15 Faces patches, one 9x9 (81 px, too small), one 20x20 Places patch; t = 0 elsewhere."""
    f = np.zeros(shape)
    f[5:20, 5:20] = 8.0
    f[30:45, 25:40] = 6.0
    f[50:59, 40:49] = 9.0
    p = np.zeros(shape)
    p[10:30, 28:48] = 7.0
    return f, p


def _patches(cmap, **over):
    prm = human_params(cmap, **over)
    found = find_domain_patches(cmap.positions_mm, cmap.values, **prm.patch_kwargs())
    return patch_counts(found), {k: sorted(v.tolist()) for k, v in patch_areas(found).items()}


# ------------------------------------------------------------------------------------------- NIfTI


def _save_nifti(path, data, affine):
    nib.save(nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine), str(path))
    return path


def test_nifti_planted_patches_exact_counts_and_areas(tmp_path):
    f, p = _planted()
    aff = np.diag([1.5, 1.5, 3.0, 1.0])
    aff[:3, 3] = [-40.0, 20.0, 5.0]
    vol = np.stack([f, p], axis=-1)[:, :, None, :]  # (x, y, 1 slice, 2 contrasts)
    m = nifti_map(
        _save_nifti(tmp_path / "t.nii.gz", vol, aff), names=["Faces", "Places"], subject="s1", hemisphere="lh"
    )
    assert m.n_points == 60 * 50 and m.pixel_size_mm == 1.5 and m.kind == "voxels"
    counts, areas = _patches(m)
    # 15 x 15 voxels of 1.5 mm: alpha shape of voxel centres = (14 * 1.5)^2; the 9 x 9 patch has < 100 voxels
    assert counts == {"Faces": 2, "Places": 1}
    assert areas == {"Faces": [441.0, 441.0], "Places": [(19 * 1.5) ** 2]}


def test_nifti_roi_mask_and_rotated_affine(tmp_path):
    f, p = _planted()
    c, s = np.cos(0.4), np.sin(0.4)
    aff = np.eye(4)
    aff[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.diag([2.0, 2.0, 2.0])  # oblique slice, 2 mm
    roi = np.ones((60, 50, 1))
    roi[25:, :] = 0  # drops the second Faces patch and the small one
    fpath = _save_nifti(tmp_path / "faces.nii", f[:, :, None], aff)
    ppath = _save_nifti(tmp_path / "places.nii", p[:, :, None], aff)
    rpath = _save_nifti(tmp_path / "roi.nii", roi, aff)
    m = nifti_map({"Faces": fpath, "Places": ppath}, roi=rpath)
    assert m.n_points == 25 * 50 and m.pixel_size_mm == pytest.approx(2.0)
    counts, areas = _patches(m)
    assert counts["Faces"] == 1
    assert areas["Faces"] == pytest.approx([(14 * 2.0) ** 2])
    assert counts["Places"] == 1  # the 15 x 20 part of the Places square inside the ROI
    assert areas["Places"] == pytest.approx([(14 * 2.0) * (19 * 2.0)])


def test_nifti_errors(tmp_path):
    f, _ = _planted()
    good = np.diag([1.0, 1.0, 1.0, 1.0])
    fpath = _save_nifti(tmp_path / "f.nii", f[:, :, None], good)
    with pytest.raises(ValueError, match="not a flat"):
        nifti_map(_save_nifti(tmp_path / "vol.nii", np.zeros((5, 6, 7)), good))
    with pytest.raises(ValueError, match="name"):
        nifti_map(fpath, names=["a", "b"])
    with pytest.raises(ValueError, match="ROI .* shape"):
        nifti_map(fpath, roi=_save_nifti(tmp_path / "roi.nii", np.ones((60, 49, 1)), good))
    with pytest.raises(ValueError, match="different affine"):
        nifti_map(fpath, roi=_save_nifti(tmp_path / "roi2.nii", np.ones((60, 50, 1)), np.diag([2.0, 2, 2, 1])))
    nan = np.full((60, 50, 1), np.nan)
    nan[0, 0] = 1.0
    roi = np.zeros((60, 50, 1))
    roi[10:20, 10:20] = 1
    with pytest.raises(ValueError, match="all NaN inside the ROI"):
        nifti_map(_save_nifti(tmp_path / "nan.nii", nan, good), roi=roi)
    with pytest.raises(ValueError, match="singular"):
        sample_volume(np.zeros((4, 4, 4)), np.zeros((3, 3)), affine=np.diag([1.0, 0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="outside the volume"):
        sample_volume(np.zeros((4, 4, 4)), np.full((10, 3), 100.0), affine=np.eye(4))
    with pytest.raises(FileNotFoundError):
        nifti_map(tmp_path / "missing.nii")


def test_sample_volume_onto_surface():
    vol = np.arange(4 * 5 * 6, dtype=float).reshape(4, 5, 6)
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    aff[:3, 3] = [10, 20, 30]
    ijk = np.array([[0, 0, 0], [3, 4, 5], [1, 2, 3]])
    xyz = ijk * 2.0 + [10, 20, 30]
    assert sample_volume(vol, xyz, affine=aff).tolist() == [vol[tuple(i)] for i in ijk]


# ------------------------------------------------------------------------------------------- GIfTI


def _grid_surface(shape, step=1.0):
    rows, cols = np.indices(shape)
    xyz = np.column_stack([rows.ravel() * step, cols.ravel() * step, np.zeros(rows.size)])
    from scipy.spatial import Delaunay

    return xyz, Delaunay(xyz[:, :2]).simplices


def test_gifti_planted_patches_exact(tmp_path):
    f, p = _planted()
    xyz, faces = _grid_surface(f.shape)
    write_gifti_surface(tmp_path / "lh.flat.surf.gii", xyz, faces)
    write_gifti_data(tmp_path / "lh.floc.func.gii", {"Faces": f.ravel(), "Places": p.ravel()})
    coords, tri = load_gifti_surface(tmp_path / "lh.flat.surf.gii")
    assert coords.shape == (3000, 3) and tri.shape == faces.shape
    m = surface_map(tmp_path / "lh.flat.surf.gii", tmp_path / "lh.floc.func.gii", subject="s1", hemisphere="lh")
    assert m.kind == "vertices" and m.domains == ["Faces", "Places"]
    counts, areas = _patches(m, sigma_mm=0.0, grid_spacing_mm=1.0, min_units=100)
    assert counts == {"Faces": 2, "Places": 1}
    assert areas == {"Faces": [196.0, 196.0], "Places": [361.0]}
    # ROI as a .shape.gii mask: keep rows < 25 only
    roi = np.zeros(f.shape)
    roi[:25] = 1
    write_gifti_data(tmp_path / "lh.roi.shape.gii", {"roi": roi.ravel()})
    m2 = surface_map(tmp_path / "lh.flat.surf.gii", tmp_path / "lh.floc.func.gii", tmp_path / "lh.roi.shape.gii")
    assert m2.n_points == 25 * 50
    assert _patches(m2, sigma_mm=0.0, grid_spacing_mm=1.0, min_units=100)[0]["Faces"] == 1


def test_model_map_gifti_round_trip_same_metrics(tmp_path):
    rng = np.random.default_rng(0)
    # a model map as a run gives it: float32 unit positions; t values as GIfTI stores them (float32)
    pos = rng.uniform(0, 70, size=(3000, 2)).astype(np.float32)
    centres = rng.uniform(10, 60, size=(5, 2))
    vals = {
        d: (rng.normal(size=3000) + 8 * np.exp(-((pos - c) ** 2).sum(1) / 60)).astype(np.float32)
        for d, c in zip(DOMAINS, centres)
    }
    model = CorticalMap(pos, vals, "model", "m", "units")
    write_gifti_map(model, tmp_path / "model.flat.surf.gii", tmp_path / "model.func.gii")
    back = surface_map(tmp_path / "model.flat.surf.gii", tmp_path / "model.func.gii", hemisphere="model")
    np.testing.assert_array_equal(back.positions_mm, model.positions_mm)
    for d in DOMAINS:
        np.testing.assert_array_equal(back.values[d], model.values[d])
    prm = model_params(**FAST)
    direct, read = map_metrics(model, prm, seed=3), map_metrics(back, prm, seed=3)
    assert direct == read
    assert sum(direct["patch_count"].values()) >= 5


def test_surface_errors(tmp_path):
    xyz, faces = _grid_surface((10, 10))
    write_gifti_surface(tmp_path / "s.surf.gii", xyz, faces)
    write_gifti_data(tmp_path / "d.func.gii", {"Faces": np.zeros(99)})
    with pytest.raises(ValueError, match="mismatched vertex counts"):
        surface_map(tmp_path / "s.surf.gii", tmp_path / "d.func.gii")
    folded = xyz.copy()
    folded[:, 2] = (folded[:, 0] - 4.5) ** 2
    write_gifti_surface(tmp_path / "folded.surf.gii", folded, faces)
    write_gifti_data(tmp_path / "ok.func.gii", {"Faces": np.ones(100)})
    with pytest.raises(ValueError, match="not flat"):
        surface_map(tmp_path / "folded.surf.gii", tmp_path / "ok.func.gii")
    write_gifti_data(tmp_path / "nan.func.gii", {"Faces": np.full(100, np.nan)})
    with pytest.raises(ValueError, match="all NaN"):
        surface_map(tmp_path / "s.surf.gii", tmp_path / "nan.func.gii")
    with pytest.raises(ValueError, match="no POINTSET"):
        load_gifti_surface(tmp_path / "ok.func.gii")


# --------------------------------------------------------------------------------------- FreeSurfer


def test_freesurfer_patch_label_annot(tmp_path):
    f, p = _planted((40, 40))
    xyz, faces = _grid_surface(f.shape)
    n = xyz.shape[0]
    folded = xyz.copy()
    folded[:, 2] = np.sin(xyz[:, 0] / 5.0) * 4  # the 3-D surface is folded; the patch is flat
    write_geometry(str(tmp_path / "lh.white"), folded, faces.astype(np.int32))
    write_morph_data(str(tmp_path / "lh.faces"), f.ravel())
    write_morph_data(str(tmp_path / "lh.places"), p.ravel())
    keep = np.flatnonzero(xyz[:, 0] < 30)  # patch cut: rows 0..29
    write_patch(tmp_path / "lh.full.flat.patch.3d", keep, xyz[keep])
    vno, pxyz = read_patch(tmp_path / "lh.full.flat.patch.3d")
    np.testing.assert_array_equal(vno, keep)
    np.testing.assert_allclose(pxyz, xyz[keep])
    data = {"Faces": tmp_path / "lh.faces", "Places": tmp_path / "lh.places"}
    m = surface_map(tmp_path / "lh.full.flat.patch.3d", data, hemisphere="lh")
    assert m.n_points == keep.size
    with pytest.raises(ValueError, match="not flat"):
        surface_map(tmp_path / "lh.white", data)
    # label: vertices with column < 25
    lab = np.flatnonzero(xyz[:, 1] < 25)
    lines = ["#!ascii label", str(lab.size)] + [
        f"{v} {x:.1f} {y:.1f} {z:.1f} 0.0" for v, (x, y, z) in zip(lab, xyz[lab])
    ]
    (tmp_path / "lh.vtc.label").write_text("\n".join(lines) + "\n")
    m2 = surface_map(tmp_path / "lh.full.flat.patch.3d", data, tmp_path / "lh.vtc.label")
    assert m2.n_points == int(np.sum((xyz[:, 0] < 30) & (xyz[:, 1] < 25)))
    counts, areas = _patches(m2, sigma_mm=0.0, grid_spacing_mm=1.0, min_units=100)
    # the patch keeps rows < 30, the label columns < 25: one 15 x 15 Faces square left, no Places square
    assert counts == {"Faces": 1, "Places": 0} and areas["Faces"] == [196.0]
    # annotation: parcel "vtc" = same vertices
    labels = np.zeros(n, dtype=np.int32)
    labels[lab] = 1
    ctab = np.array([[25, 25, 25, 0, 0], [200, 0, 0, 0, 0]], dtype=np.int32)
    write_annot(str(tmp_path / "lh.aparc.annot"), labels, ctab, [b"unknown", b"vtc"])
    m3 = surface_map(tmp_path / "lh.full.flat.patch.3d", data, tmp_path / "lh.aparc.annot", annotation_names=["vtc"])
    np.testing.assert_array_equal(m3.positions_mm, m2.positions_mm)
    with pytest.raises(ValueError, match="no parcel"):
        surface_map(tmp_path / "lh.full.flat.patch.3d", data, tmp_path / "lh.aparc.annot", annotation_names=["V1"])
    write_morph_data(str(tmp_path / "lh.short"), np.zeros(n - 7))
    with pytest.raises(ValueError, match="disagree|only"):
        surface_map(tmp_path / "lh.full.flat.patch.3d", {"Faces": tmp_path / "lh.faces", "X": tmp_path / "lh.short"})


# ---------------------------------------------------------------------------------------------- NSD


def _nsd_dir(tmp_path, n_subjects=3, seed=0):
    rng = np.random.default_rng(seed)
    for s in range(n_subjects):
        for i, c in enumerate(["faces", "bodies", "characters", "places", "objects"]):
            lh = rng.normal(size=(40, 50))
            rh = rng.normal(size=(36, 44))
            lh[4 + i * 6 : 16 + i * 6, 5 + s : 20 + s] += 9
            rh[3:15, 4 + i * 7 : 16 + i * 7] += 7
            lh[:2] = np.nan
            rh[:, :3] = np.nan
            write_nsd_flatmap(tmp_path / f"subj0{s + 1}_{c}.mat", lh, rh, 1.0, 0.8)
    return tmp_path


def test_nsd_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    lh = rng.normal(size=(12, 15))
    rh = rng.normal(size=(10, 9))
    lh[0, :] = np.nan
    write_nsd_flatmap(tmp_path / "subj05_Faces.mat", lh, rh, 2.0, 1.25)
    L, R = read_nsd_flatmap(tmp_path / "subj05_Faces.mat")
    assert (L.subject, L.hemisphere, L.domains) == ("subj05", "lh", ["Faces"])
    assert L.pixel_size_mm == 0.5 and R.pixel_size_mm == 0.8
    assert L.n_points == 11 * 15 and R.n_points == 10 * 9
    # positions: x = col / px_per_mm, y = (rows - 1 - row) / px_per_mm, rh mirrored back
    row, col = 3, 4
    i = np.flatnonzero(np.all(np.isclose(L.positions_mm, [col / 2.0, (11 - row) / 2.0]), axis=1))
    assert L.values["Faces"][i] == lh[row, col]
    j = np.flatnonzero(np.all(np.isclose(R.positions_mm, [col / 1.25, (11 - row) / 1.25]), axis=1))
    assert R.values["Faces"][j] == rh[row, col]  # rh padded to 12 rows with NaN at the bottom
    # the raw image: rh stored mirrored right of lh
    import scipy.io

    raw = scipy.io.loadmat(tmp_path / "subj05_Faces.mat")["raw"]
    assert raw.shape == (12, 24)
    np.testing.assert_array_equal(raw[:10, 15:], rh[:, ::-1])


def test_nsd_subjects_grouping_and_errors(tmp_path):
    d = _nsd_dir(tmp_path, n_subjects=2)
    (d / "subj01_car.mat").write_bytes((d / "subj01_faces.mat").read_bytes())
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        subs = load_nsd_subjects(d)
    assert any("subj01_car.mat" in str(x.message) for x in w)
    assert list(subs) == ["subj01", "subj02"]
    lh, rh = subs["subj01"]
    assert lh.domains == DOMAINS and lh.n_points == 38 * 50 and rh.n_points == 36 * 41
    import scipy.io

    scipy.io.savemat(
        d / "bad_faces.mat",
        {"raw": np.full((4, 6), np.nan), "transform_info": {"lh_px_per_mm": 1.0, "rh_px_per_mm": 1.0}},
    )
    with pytest.raises(ValueError, match="all NaN"):
        read_nsd_flatmap(d / "bad_faces.mat")
    scipy.io.savemat(d / "bad2_faces.mat", {"raw": np.ones((4, 6)), "transform_info": {"lh_px_per_mm": 1.0}})
    with pytest.raises(ValueError, match="rh_px_per_mm"):
        read_nsd_flatmap(d / "bad2_faces.mat")
    scipy.io.savemat(d / "bad3_faces.mat", {"raw": np.ones((4, 6))})
    with pytest.raises(ValueError, match="transform_info"):
        read_nsd_flatmap(d / "bad3_faces.mat")


# ------------------------------------------------------------------------------------------ compare


def _model(seed=0, n=3000):
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, 70, size=(n, 2))
    return CorticalMap(
        pos,
        {d: rng.normal(size=n) + 8 * np.exp(-((pos - rng.uniform(10, 60, 2)) ** 2).sum(1) / 60) for d in DOMAINS},
        "model",
        "m",
        "units",
    )


def test_compare_rows_and_ceiling(tmp_path):
    subs = load_nsd_subjects(_nsd_dir(tmp_path))
    comp = compare_maps(_model(), subs, model_metric_params=model_params(**FAST), human_overrides=FAST, seed=0)
    group = {(r["metric"], r["domain"], r["hemisphere"]): r for r in comp.rows if r["subject"] == "group"}
    assert ("rsa_tau", "all", "noise-normalised") in group
    # the synthetic subjects have identical domain layouts: human-human RSA is high
    assert group[("rsa_tau", "all", "mean")]["ceiling"] > 0.5
    # LOSO ceiling by hand for one scalar metric
    vals = {s: np.mean([m["patch_count"]["Faces"] for m in comp.human_metrics[s].values()]) for s in subs}
    s0 = "subj01"
    want = abs(vals[s0] - np.mean([vals[s] for s in subs if s != s0]))
    row = next(
        r
        for r in comp.rows
        if r["subject"] == s0 and r["hemisphere"] == "mean" and r["metric"] == "patch_count" and r["domain"] == "Faces"
    )
    assert row["ceiling"] == pytest.approx(want)
    assert row["score"] == pytest.approx(abs(comp.model_metrics["patch_count"]["Faces"] - vals[s0]))
    # human patches: 12 x 15 px squares at 1 px/mm -> area 11 * 14 mm^2
    assert comp.human_metrics["subj01"]["lh"]["patch_count"]["Faces"] == 1
    assert comp.human_metrics["subj01"]["lh"]["patch_area_mm2"]["Faces"] == pytest.approx(154.0)


def test_cortical_map_save_load(tmp_path):
    m = _model(n=100)
    m.meta = {"layer": "layer4.1"}
    back = CorticalMap.load(m.save(tmp_path / "m.npz"))
    np.testing.assert_array_equal(back.positions_mm, m.positions_mm)
    assert back.domains == m.domains and back.meta == m.meta and back.kind == "units"
    with pytest.raises(ValueError, match="shape"):
        CorticalMap(np.zeros((3, 2)), {"Faces": np.zeros(4)})


def test_cli_fmri_compare(tmp_path, capsys):
    from neurocwm.cli import main

    d = _nsd_dir(tmp_path / "nsd", n_subjects=2)
    model = _model().save(tmp_path / "model.npz")
    out = tmp_path / "cmp"
    argv = ["fmri", "compare", str(model), "--subjects", str(d), "--out", str(out), "--smoothness-samples", "2"]
    rc = main([*argv, "--formats", "svg", "--no-progress"])
    assert rc == 0
    assert "noise-normalised" in capsys.readouterr().out
    obj = json.loads((out / "comparison.json").read_text())
    assert {r["subject"] for r in obj["rows"]} == {"subj01", "subj02", "group"}
    header = (out / "comparison.csv").read_text().splitlines()[0]
    assert header == "subject,hemisphere,metric,domain,model,human,score,ceiling,better"
    for stem in ("rsa", "patch_counts", "domain_correlations", "maps"):
        assert (out / f"{stem}.svg").is_file()
    rc = main(["fmri", "compare", str(tmp_path / "nope"), "--subjects", str(d)])
    assert rc == 2
    assert "error" in capsys.readouterr().err
