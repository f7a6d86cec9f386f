"""`neurocwm fmri compare` on the real fsaverage5 surface (nilearn's bundled meshes, offline):
planted category patches on ventral temporal cortex come back with exact counts and their mm²
measured on the mid-thickness mesh; the flat 2-D sheet stays behind an explicit option; bad
per-vertex input is one line and exit code 2."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from neurocwm.fmri import CorticalMap, map_metrics, write_gifti_data
from neurocwm.fmri.compare import human_params
from neurocwm.fmri.fsaverage import fsaverage5_map, ventral_temporal_mask
from topography.mesh import mesh_domain_patches, midthickness

pytest.importorskip("nilearn")

DOMAINS = ["Faces", "Bodies", "Characters", "Places", "Objects"]
N = 10242
# domain, centre (pial mm), geodesic radius (mm): two face patches, one body, one place patch
PLANTED = [
    ("Faces", (-40.0, -50.0, -20.0), 8.0),
    ("Faces", (-30.0, -30.0, -25.0), 9.0),
    ("Bodies", (-45.0, -72.0, -8.0), 9.0),
    ("Places", (-28.0, -60.0, -12.0), 7.0),
]


def _fsaverage5(hemi="left"):
    """Mid-thickness coords, faces, flat coords and pial coords straight from nilearn (not via neurocwm)."""
    from nilearn.datasets import load_fsaverage

    fs = load_fsaverage("fsaverage5")
    pial = np.asarray(fs["pial"].parts[hemi].coordinates, dtype=float)
    white = np.asarray(fs["white_matter"].parts[hemi].coordinates, dtype=float)
    faces = np.asarray(fs["pial"].parts[hemi].faces)
    flat = fs["flat"].parts[hemi]
    return (pial + white) / 2, faces, np.asarray(flat.coordinates, dtype=float), np.asarray(flat.faces), pial


def _areas(coords, faces):
    """Barycentric vertex areas, written independently of topography.mesh."""
    a, b, c = (coords[faces[:, k]] for k in range(3))
    tri = 0.5 * np.sqrt((np.cross(b - a, c - a) ** 2).sum(axis=1))
    out = np.zeros(len(coords))
    for k in range(3):
        np.add.at(out, faces[:, k], tri / 3)
    return out


def _planted_maps(seed=0):
    """t maps (one per domain, 10242 values) with geodesic disks of t = 8 on ventral temporal
    cortex over N(0, 1) noise, and each planted disk's vertices."""
    mid, faces, _, flat_faces, pial = _fsaverage5()
    roi = ventral_temporal_mask("left")
    roi[np.setdiff1d(np.arange(N), flat_faces.ravel())] = False  # the flat patch's cut
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    length = np.linalg.norm(mid[edges[:, 0]] - mid[edges[:, 1]], axis=1)
    graph = coo_matrix((length, (edges[:, 0], edges[:, 1])), shape=(N, N)).tocsr()
    sub = np.flatnonzero(roi)
    rng = np.random.default_rng(seed)
    t = {d: rng.normal(0.0, 1.0, N) for d in DOMAINS}
    disks = []
    for dom, centre, radius in PLANTED:
        c = sub[np.argmin(np.linalg.norm(pial[sub] - centre, axis=1))]
        dist = dijkstra(graph[sub][:, sub], indices=int(np.flatnonzero(sub == c)[0]), limit=radius + 1)
        disk = sub[dist <= radius]
        t[dom][disk] = 8.0
        disks.append((dom, disk))
    for d in DOMAINS:
        t[d][~roi] = np.nan  # no data outside the ROI is allowed
    return t, disks, _areas(mid, faces), roi


def _model(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, 70, size=(n, 2))
    centres = rng.uniform(10, 60, size=(len(DOMAINS), 2))
    return CorticalMap(
        pos,
        {d: rng.normal(size=n) + 8 * np.exp(-((pos - c) ** 2).sum(1) / 60) for d, c in zip(DOMAINS, centres)},
        "model",
        "m",
        "units",
    )


def test_planted_patches_are_disjoint_and_sized_like_category_patches():
    t, disks, area, roi = _planted_maps()
    allv = np.concatenate([d for _, d in disks])
    assert len(np.unique(allv)) == len(allv) and roi[allv].all()
    _, faces, *_ = _fsaverage5()
    # no two planted disks of one domain touch along a mesh edge (else they would be one patch)
    faces_ = [d for dom, d in disks if dom == "Faces"]
    touching = np.isin(faces, faces_[0]).any(axis=1) & np.isin(faces, faces_[1]).any(axis=1)
    assert not touching.any()
    for _, d in disks:
        assert 100 < area[d].sum() < 4500  # the size range of human category patches


def test_fsaverage5_map_measures_patches_on_the_mesh():
    t, disks, area, roi = _planted_maps()
    m = fsaverage5_map(t, "lh", subject="s01")
    assert m.kind == "vertices" and m.mesh is not None and m.n_points == roi.sum()
    np.testing.assert_array_equal(m.vertices, np.flatnonzero(roi))
    coords, faces = m.mesh
    np.testing.assert_allclose(coords, _fsaverage5()[0])  # the mid-thickness surface
    prm = human_params(m)
    assert prm.sigma_mm == 0.0 and prm.threshold > 4.0 and prm.min_area_mm2 == 100.0
    res = map_metrics(m, human_params(m, smooth_samples=2, smooth_units=200), with_patches=True)
    assert res["patch_count"] == {"Faces": 2, "Bodies": 1, "Characters": 0, "Places": 1, "Objects": 0}
    for dom, disk in disks:
        match = max(res["patches"][dom], key=lambda q: np.intersect1d(q.unit_indices, disk).size)
        assert match.area_mm2 == pytest.approx(area[disk].sum(), rel=0.10)


def test_save_load_keeps_the_mesh(tmp_path):
    t, *_ = _planted_maps()
    m = fsaverage5_map(t, "lh", subject="s01")
    back = CorticalMap.load(m.save(tmp_path / "m.npz"))
    np.testing.assert_array_equal(back.vertices, m.vertices)
    np.testing.assert_array_equal(back.mesh[1], m.mesh[1])
    prm = human_params(m, smooth_samples=2, smooth_units=200)
    a, b = map_metrics(back, prm, seed=1), map_metrics(m, prm, seed=1)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)  # NaN (no patch) compares as text
    assert a["patch_count"]["Faces"] == 2
    with pytest.raises(ValueError, match="both mesh and vertices"):
        CorticalMap(m.positions_mm, m.values, "lh", vertices=m.vertices)


def test_mesh_domain_patches_on_a_grid_of_unit_squares():
    # a flat 10 x 10 grid of 1-mm squares: an L-shaped 6-vertex patch has a known barycentric area
    yy, xx = np.mgrid[0:10, 0:10]
    coords = np.column_stack([xx.ravel(), yy.ravel(), np.zeros(100)]).astype(float)
    q = np.arange(100).reshape(10, 10)[:-1, :-1].ravel()
    faces = np.concatenate([np.column_stack([q, q + 1, q + 11]), np.column_stack([q, q + 11, q + 10])])
    v = np.zeros(100)
    v[[11, 12, 13, 21, 31]] = 5.0  # interior vertices: each owns 1 mm^2
    v[[77, 78]] = 5.0  # a second, 2 mm^2 patch
    got = mesh_domain_patches(coords, faces, {"a": v, "b": np.zeros(100)}, threshold=4.0, min_area_mm2=0.0)
    assert [p.area_mm2 for p in got["a"]] == pytest.approx([5.0, 2.0]) and got["b"] == []
    np.testing.assert_array_equal(got["a"][0].unit_indices, [11, 12, 13, 21, 31])
    big = mesh_domain_patches(coords, faces, {"a": v}, threshold=4.0, min_area_mm2=3.0)["a"]
    assert [p.area_mm2 for p in big] == pytest.approx([5.0])
    many = mesh_domain_patches(coords, faces, {"a": v}, threshold=4.0, min_area_mm2=0.0, min_vertices=3)["a"]
    assert [p.unit_indices.size for p in many] == [5]
    inside = np.ones(100, dtype=bool)
    inside[12] = False  # the mask cuts vertex 12 out: 11 stays joined to 21 and 31, 13 is alone
    cut = mesh_domain_patches(coords, faces, {"a": v}, threshold=4.0, min_area_mm2=0.0, mask=inside)["a"]
    assert sorted(p.unit_indices.tolist() for p in cut) == [[11, 21, 31], [13], [77, 78]]
    np.testing.assert_allclose(midthickness(coords, coords + [0, 0, 2.0])[:, 2], 1.0)
    with pytest.raises(ValueError, match="one entry per vertex"):
        mesh_domain_patches(coords, faces, {"a": v[:50]}, threshold=4.0)


def _write_subjects(root, t):
    """s01 as a <subject>_lh.func.gii, s02 as a .json spec of per-domain .npy / .mgh files."""
    root.mkdir(parents=True, exist_ok=True)
    write_gifti_data(root / "s01_lh.func.gii", t)
    files = {}
    for i, d in enumerate(DOMAINS):
        if i % 2:
            np.save(root / f"s02_lh_{d}.npy", t[d])
            files[d] = f"s02_lh_{d}.npy"
        else:
            img = nib.MGHImage(t[d].astype(np.float32).reshape(-1, 1, 1), np.eye(4))
            nib.save(img, str(root / f"s02_lh_{d}.mgh"))
            files[d] = f"s02_lh_{d}.mgh"
    (root / "s02.json").write_text(json.dumps({"subject": "s02", "hemispheres": [{"hemisphere": "lh", "data": files}]}))
    return root


def test_cli_fmri_compare_on_fsaverage5_planted(tmp_path, capsys):
    from neurocwm.cli import main

    t, disks, area, _ = _planted_maps()
    subjects = _write_subjects(tmp_path / "subjects", t)
    model = _model().save(tmp_path / "model.npz")
    out = tmp_path / "cmp"
    argv = ["fmri", "compare", str(model), "--subjects", str(subjects), "--out", str(out), "--smoothness-samples", "2"]
    rc = main([*argv, "--formats", "png", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    obj = json.loads((out / "comparison.json").read_text())
    assert obj["meta"]["human_geometry"] == "fsaverage5"
    geo = obj["meta"]["human_maps"]["s02"]["lh"]
    assert geo["surface"] == "fsaverage5" and geo["area_surface"] == "midthickness"
    assert geo["roi"] == "ventral_temporal_mask" and geo["n_points"] == int(np.isfinite(t["Faces"]).sum())
    want_count = {"Faces": 2, "Bodies": 1, "Characters": 0, "Places": 1, "Objects": 0}
    for s in ("s01", "s02"):
        hm = obj["human_metrics"][s]["lh"]
        assert hm["patch_count"] == want_count
        for dom in ("Faces", "Bodies", "Places"):
            planted = np.mean([area[d].sum() for dd, d in disks if dd == dom])
            assert hm["patch_area_mm2"][dom] == pytest.approx(planted, rel=0.10)
    rows = [
        r
        for r in obj["rows"]
        if r["subject"] == "s01" and r["hemisphere"] == "lh" and r["metric"] == "patch_count" and r["domain"] == "Faces"
    ]
    assert rows[0]["human"] == 2
    assert (out / "maps.png").stat().st_size > 10000
    # the old flat 2-D sheet, explicitly: areas measured on the flat patch differ
    flat_out = tmp_path / "cmp_flat"
    argv = ["fmri", "compare", str(model), "--subjects", str(subjects / "s01_lh.func.gii"), "--out", str(flat_out)]
    rc = main([*argv, "--smoothness-samples", "2", "--formats", "png", "--no-progress", "--human-geometry", "flat"])
    assert rc == 0, capsys.readouterr().err
    flat = json.loads((flat_out / "comparison.json").read_text())
    assert flat["meta"]["human_geometry"] == "flat"
    mesh_areas = obj["human_metrics"]["s01"]["lh"]["patch_area_mm2"]
    flat_areas = flat["human_metrics"]["s01"]["lh"]["patch_area_mm2"]
    assert any(
        abs(flat_areas[d] / mesh_areas[d] - 1) > 0.10
        for d in ("Faces", "Bodies", "Places")
        if flat_areas[d] is not None
    )


def _cli_error(args, capsys):
    from neurocwm.cli import main

    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("neurocwm fmri: error: "), err
    return err


def test_cli_fsaverage5_bad_input(tmp_path, capsys):
    t, *_ = _planted_maps()
    model = str(_model(n=500).save(tmp_path / "model.npz"))
    base = ["fmri", "compare", model, "--no-progress", "--formats", "png"]
    # wrong vertex count: both sizes named
    short = {d: v[:10000] for d, v in t.items()}
    (tmp_path / "short").mkdir()
    write_gifti_data(tmp_path / "short" / "s01_lh.func.gii", short)
    err = _cli_error(base + ["--subjects", str(tmp_path / "short"), "--out", str(tmp_path / "o1")], capsys)
    assert "10000" in err and "10242" in err
    # NaN inside the ventral temporal ROI
    nan = {d: v.copy() for d, v in t.items()}
    nan["Places"][np.flatnonzero(np.isfinite(nan["Places"]))[:3]] = np.nan
    (tmp_path / "nan").mkdir()
    write_gifti_data(tmp_path / "nan" / "s01_lh.func.gii", nan)
    err = _cli_error(base + ["--subjects", str(tmp_path / "nan"), "--out", str(tmp_path / "o2")], capsys)
    assert "'Places' has 3 NaN" in err
    # a missing file named by a spec
    (tmp_path / "spec.json").write_text(
        json.dumps({"subject": "s03", "hemispheres": [{"hemisphere": "lh", "data": {"Faces": "gone.npy"}}]})
    )
    err = _cli_error(base + ["--subjects", str(tmp_path / "spec.json"), "--out", str(tmp_path / "o3")], capsys)
    assert "gone.npy" in err
    # a misnamed per-vertex file, and a pickled .npy that would run code
    write_gifti_data(tmp_path / "s01.func.gii", t)
    err = _cli_error(base + ["--subjects", str(tmp_path / "s01.func.gii"), "--out", str(tmp_path / "o4")], capsys)
    assert "<subject>_<lh|rh>.func.gii" in err

    class Evil:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    with open(tmp_path / "evil.npy", "wb") as fh:
        np.save(fh, np.array([Evil()], dtype=object), allow_pickle=True)
    (tmp_path / "evil.json").write_text(
        json.dumps({"subject": "s04", "hemispheres": [{"hemisphere": "lh", "data": {"Faces": "evil.npy"}}]})
    )
    err = _cli_error(base + ["--subjects", str(tmp_path / "evil.json"), "--out", str(tmp_path / "o5")], capsys)
    assert "evil.npy" in err and not (tmp_path / "pwned").exists()
    for k in range(1, 6):
        assert not (tmp_path / f"o{k}").exists()  # nothing written
