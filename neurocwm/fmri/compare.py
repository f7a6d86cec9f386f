"""Model-vs-human comparison of category maps, and the human-human ceiling.

The metrics of each map are :func:`topography.category_maps.map_metrics` (see that module for the
model and human parameters of Margalit et al. 2024); this module compares them, subject by
subject, and computes the leave-one-subject-out ceiling.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from topography.category_maps import (  # noqa: F401 - re-exported: neurocwm.fmri's public names
    COLOC_PAIRS,
    MetricParams,
    find_map_patches,
    human_params,
    map_metrics,
    model_params,
)
from topography.cortical_map import CorticalMap
from topography.rsa import rsa_similarity

__all__ = ["Comparison", "compare_maps", "METRIC_DIRECTION"]

#: For each scalar metric: how the model-vs-subject score is formed and which direction is better.
METRIC_DIRECTION = {
    "rsa_tau": "higher",
    "patch_count": "lower",
    "patch_area_mm2": "lower",
    "smoothness": "lower",
    "colocalization": "lower",
}


@dataclass
class Comparison:
    """Outcome of :func:`compare_maps`.

    Attributes
    ----------
    rows : list of dict
        Tidy table: ``subject, hemisphere, metric, domain, model, human, score, ceiling,
        better``. Per subject there is one row per hemisphere and a ``hemisphere="mean"`` row;
        ``subject="group"`` rows give the mean over subjects (``human`` = mean, ``ceiling`` =
        mean leave-one-subject-out ceiling) and, for the RSA, ``noise-normalised`` model / ceiling.
        ``score`` is the Kendall tau to the model (``rsa_tau``, higher is better) or the absolute
        model - human difference (others, lower is better); ``ceiling`` is the same quantity
        for the subject against the other subjects (mean of their values; for the RSA the
        mean tau over all hemisphere pairs across subjects).
    model_metrics : dict
        :func:`map_metrics` of the model map.
    human_metrics : dict
        ``subject -> hemisphere -> map_metrics``.
    domains : list of str
    """

    rows: list[dict]
    model_metrics: dict
    human_metrics: dict
    domains: list[str]
    maps: dict = field(default_factory=dict)


def _scalar_entries(metrics: dict) -> dict[tuple[str, str], float]:
    out = {}
    for metric in ("patch_count", "patch_area_mm2", "smoothness", "colocalization"):
        for dom, v in metrics[metric].items():
            out[(metric, dom)] = float(v)
    return out


def _nanmean(x) -> float:
    a = np.asarray(list(x), dtype=np.float64)
    return float(np.nanmean(a)) if np.isfinite(a).any() else float("nan")


def compare_maps(
    model: CorticalMap,
    subjects: Mapping[str, Sequence[CorticalMap]],
    *,
    model_metric_params: MetricParams | None = None,
    human_overrides: Mapping | None = None,
    seed: int = 0,
    progress: bool = False,
) -> Comparison:
    """Compare a model map with each subject's hemispheres, plus the leave-one-subject-out ceiling.

    Parameters
    ----------
    model : CorticalMap
        The model's domain selectivity on its sheet.
    subjects : mapping of str to sequence of CorticalMap
        Subject -> its hemisphere maps (e.g. from :func:`neurocwm.fmri.nsd.load_nsd_subjects`).
    model_metric_params : MetricParams, optional
        Default :func:`model_params`.
    human_overrides : mapping, optional
        Overrides passed to :func:`human_params` for every human map.
    seed : int
        Seeds the smoothness samples (each map gets its own derived stream).
    progress : bool
        Show a progress bar over the human maps.

    Returns
    -------
    Comparison
        The tidy table of model, human and ceiling values per subject, hemisphere, metric and
        domain, with the metrics of every map.

    Raises
    ------
    ValueError
        With fewer than 1 subject, or when the model and the humans share fewer than 3 domains.
    """
    if not subjects:
        raise ValueError("no subject to compare with")
    domains = _shared_domains(model, [h for maps in subjects.values() for h in maps])
    mm, hm, finite = _metrics_of_every_map(
        model, subjects, domains, model_metric_params, human_overrides, seed=seed, progress=progress
    )
    model_f = model.finite(domains)
    rows = _rsa_rows(model_f, hm, finite, domains)
    rows += _scalar_rows(mm, hm)
    rows += _group_rows(rows)
    return Comparison(rows, mm, hm, domains)


def _shared_domains(model: CorticalMap, hemis_all: list[CorticalMap]) -> list[str]:
    """The model's domains that every hemisphere has too (at least 3)."""
    domains = [d for d in model.domains if all(d in h.values for h in hemis_all)]
    if len(domains) < 3:
        raise ValueError(
            f"model domains {model.domains} and subject domains "
            f"{sorted({d for h in hemis_all for d in h.domains})} share fewer than 3"
        )
    return domains


def _metrics_of_every_map(model, subjects, domains, model_metric_params, human_overrides, *, seed, progress):
    """(model metrics, subject -> hemisphere -> metrics, subject -> finite hemisphere maps); one seed per map."""
    hemis_all = [h for maps in subjects.values() for h in maps]
    ss = np.random.SeedSequence(seed).spawn(1 + len(hemis_all))
    seeds = iter(int(s.generate_state(1)[0]) for s in ss)
    items = [(s, h) for s, maps in subjects.items() for h in maps]
    if progress:
        from neurocwm.progress import progress_bar as tqdm

        items = tqdm(items, desc="human maps", unit="map")
    mm = map_metrics(model, model_metric_params or model_params(), domains, seed=next(seeds))
    hm: dict[str, dict[str, dict]] = {}
    finite: dict[str, list[CorticalMap]] = {}
    for subj, h in items:
        hm.setdefault(subj, {})[h.hemisphere or f"map{len(hm.get(subj, {}))}"] = map_metrics(
            h, human_params(h, **(human_overrides or {})), domains, seed=next(seeds)
        )
        finite.setdefault(subj, []).append(h.finite(domains))
    return mm, hm, finite


def _row(subj, hemi, metric, dom, mv, hv, score, ceil) -> dict:
    """One row of :attr:`Comparison.rows`."""
    return {
        "subject": subj,
        "hemisphere": hemi,
        "metric": metric,
        "domain": dom,
        "model": mv,
        "human": hv,
        "score": score,
        "ceiling": ceil,
        "better": METRIC_DIRECTION[metric],
    }


def _rsa_rows(model_f: CorticalMap, hm: dict, finite: dict, domains: list[str]) -> list[dict]:
    """Kendall tau of the model to each hemisphere, per-subject mean and leave-one-subject-out ceiling."""
    subjects_list = list(hm)
    rsa_model = {s: [rsa_similarity(model_f.values, h.values, domains) for h in finite[s]] for s in subjects_list}
    rsa_ceiling = {}
    for s in subjects_list:
        others = [h for o in subjects_list if o != s for h in finite[o]]
        rsa_ceiling[s] = (
            _nanmean(rsa_similarity(a.values, b.values, domains) for a, b in itertools.product(finite[s], others))
            if others
            else float("nan")
        )
    rows = []
    for s in subjects_list:
        for h, tau in zip(hm[s], rsa_model[s]):
            rows.append(_row(s, h, "rsa_tau", "all", None, None, tau, None))
        rows.append(_row(s, "mean", "rsa_tau", "all", None, None, _nanmean(rsa_model[s]), rsa_ceiling[s]))
    return rows


def _scalar_rows(mm: dict, hm: dict) -> list[dict]:
    """|model - human| of every scalar metric per hemisphere and subject mean, with its LOSO ceiling."""
    subjects_list = list(hm)
    model_sc = _scalar_entries(mm)
    human_mean = {s: {k: _nanmean(_scalar_entries(m)[k] for m in hm[s].values()) for k in model_sc} for s in hm}
    rows = []
    for s in subjects_list:
        for h, m in hm[s].items():
            for k, hv in _scalar_entries(m).items():
                rows.append(_row(s, h, k[0], k[1], model_sc[k], hv, abs(model_sc[k] - hv), None))
        for k in model_sc:
            others = [human_mean[o][k] for o in subjects_list if o != s]
            ceil = abs(human_mean[s][k] - _nanmean(others)) if others else float("nan")
            hv = human_mean[s][k]
            rows.append(_row(s, "mean", k[0], k[1], model_sc[k], hv, abs(model_sc[k] - hv), ceil))
    return rows


def _group_rows(rows: list[dict]) -> list[dict]:
    """``subject="group"`` rows: means over the subjects' mean rows; noise-normalised RSA."""
    mean_rows = [r for r in rows if r["hemisphere"] == "mean"]
    keys = list(dict.fromkeys((r["metric"], r["domain"]) for r in mean_rows))
    out = []
    for metric, dom in keys:
        rs = [r for r in mean_rows if r["metric"] == metric and r["domain"] == dom]
        score = _nanmean(r["score"] for r in rs)
        ceil = _nanmean(r["ceiling"] for r in rs)
        human = None if metric == "rsa_tau" else _nanmean(r["human"] for r in rs)
        out.append(_row("group", "mean", metric, dom, rs[0]["model"], human, score, ceil))
        if metric == "rsa_tau":
            nn = score / ceil if np.isfinite(ceil) and ceil > 0 else float("nan")
            out.append(_row("group", "noise-normalised", metric, dom, None, None, nn, None))
    return out
