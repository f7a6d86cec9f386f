"""Human fMRI maps (per fsaverage5 vertex, NIfTI, GIfTI, FreeSurfer, NSD flat maps) as
:class:`CorticalMap` objects that feed the same :mod:`topography` metrics as model units;
model-vs-human comparison. Maps per fsaverage5 vertex are measured on the real fsaverage5
surface (:func:`fsaverage5_map`)."""

from topography.cortical_map import CorticalMap

from .compare import Comparison, compare_maps, human_params, map_metrics, model_params
from .fsaverage import fsaverage5_map
from .nsd import load_nsd_subjects, read_nsd_flatmap, write_nsd_flatmap
from .surfaces import (
    flat_positions,
    load_annotation,
    load_curvature,
    load_flat,
    load_freesurfer_surface,
    load_gifti_data,
    load_gifti_surface,
    load_label,
    read_patch,
    surface_map,
    write_gifti_data,
    write_gifti_map,
    write_gifti_surface,
    write_patch,
)
from .volumes import check_affine, load_roi, load_volume, nifti_map, sample_volume

__all__ = [
    "CorticalMap",
    "Comparison",
    "compare_maps",
    "human_params",
    "map_metrics",
    "model_params",
    "fsaverage5_map",
    "load_nsd_subjects",
    "read_nsd_flatmap",
    "write_nsd_flatmap",
    "flat_positions",
    "load_annotation",
    "load_curvature",
    "load_flat",
    "load_freesurfer_surface",
    "load_gifti_data",
    "load_gifti_surface",
    "load_label",
    "read_patch",
    "surface_map",
    "write_gifti_data",
    "write_gifti_map",
    "write_gifti_surface",
    "write_patch",
    "check_affine",
    "load_roi",
    "load_volume",
    "nifti_map",
    "sample_volume",
]
