"""Category patches on the real fsaverage5 ventral temporal surface (nilearn's bundled meshes),
counted exactly and measured on the mesh in mm², not on the flat patch."""

from __future__ import annotations

import numpy as np
import pytest

from topography.mesh import mesh_adjacency, mesh_patches, vertex_areas

pytest.importorskip("nilearn")


def test_vertex_areas_of_a_unit_square():
    coords = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=float)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    a = vertex_areas(coords, faces)
    np.testing.assert_allclose(a, [1 / 3, 1 / 6, 1 / 3, 1 / 6])
    assert a.sum() == pytest.approx(1.0)
    assert mesh_adjacency(faces, 4).nnz == 10  # 5 edges, both directions
    with pytest.raises(ValueError, match="faces index vertices"):
        vertex_areas(coords, np.array([[0, 1, 4]]))


def _disk(coords, adjacency, centre, radius_mm, mask):
    """Vertices of ``mask`` within ``radius_mm`` (3-D) of ``centre`` that connect to it along the
    mesh inside the mask."""
    from scipy.sparse import csgraph

    near = np.flatnonzero((np.linalg.norm(coords - coords[centre], axis=1) <= radius_mm) & mask)
    _, lab = csgraph.connected_components(adjacency[near][:, near], directed=False)
    return near[lab == lab[np.flatnonzero(near == centre)[0]]]


def test_planted_patches_on_fsaverage5_ventral_temporal_cortex():
    from neurocwm.fmri.fsaverage import fsaverage5_mesh, ventral_temporal_mask

    coords, faces = fsaverage5_mesh("left", "pial")
    flat, flat_faces = fsaverage5_mesh("left", "flat")
    assert coords.shape == flat.shape == (10242, 3) and len(flat_faces) < len(faces)  # the flat patch is cut
    vtc = ventral_temporal_mask("left")
    assert 500 < vtc.sum() < 2500
    adj = mesh_adjacency(faces, len(coords))
    area = vertex_areas(coords, faces)
    # three patches (sizes of face, body and place patches) at fusiform / occipito-temporal spots
    rng = np.random.default_rng(0)
    spots = [(-40.0, -50.0, -20.0), (-45.0, -72.0, -8.0), (-30.0, -30.0, -25.0)]
    planted = []
    for spot, r in zip(spots, (9.0, 11.0, 13.0)):
        candidates = np.flatnonzero(vtc)
        centre = candidates[np.argmin(np.linalg.norm(coords[candidates] - spot, axis=1))]
        planted.append(_disk(coords, adj, centre, r, vtc))
    assert len(set(np.concatenate(planted))) == sum(len(p) for p in planted)  # disjoint
    t = rng.normal(0, 1, len(coords))
    for p in planted:
        t[p] += 7.0
    found = mesh_patches(coords, faces, t, threshold=3.5, min_area_mm2=100.0, max_area_mm2=4500.0, mask=vtc)
    assert len(found) == 3  # exact count: the noise makes no patch of 100 mm²
    for p in planted:
        planted_area = float(area[p].sum())
        match = max(found, key=lambda q: len(np.intersect1d(q[0], p)))
        assert match[1] == pytest.approx(planted_area, rel=0.10)
        assert 100 < planted_area < 4500
    # the flat patch distorts area: the same vertices measure differently there
    flat3 = np.column_stack([flat[:, :2], np.zeros(len(flat))])
    flat_area = vertex_areas(flat3, flat_faces)
    ratios = [flat_area[p].sum() / area[p].sum() for p in planted]
    assert max(abs(r - 1) for r in ratios) > 0.1, ratios


def test_fsaverage5_surface_figure(tmp_path):
    from neurocwm.fmri.fsaverage import fsaverage5_mesh, plot_fsaverage5_map

    coords, _ = fsaverage5_mesh("left", "pial")
    t = np.where(np.linalg.norm(coords - np.array([-40.0, -50.0, -20.0]), axis=1) < 10, 6.0, 0.0)
    files = plot_fsaverage5_map(t, tmp_path / "patch", threshold=3.0, title="planted patch")
    assert [f.name for f in files] == ["patch.png"] and files[0].stat().st_size > 5000
    with pytest.raises(ValueError, match="one entry per fsaverage5 vertex"):
        plot_fsaverage5_map(t[:10], tmp_path / "bad")
    with pytest.raises(ValueError, match="hemisphere"):
        fsaverage5_mesh("middle")
