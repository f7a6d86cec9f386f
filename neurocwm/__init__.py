"""neurocwm: train topographic vision networks and counterfactual world models,
map their units onto cortex and score them against brain data.

The main functions are available from here (loaded on first use, so that ``import neurocwm``
stays light): :func:`fit`, :func:`load_run`, :func:`layer_responses`, :func:`score_layers`,
:func:`score_run`, :func:`predict_neural`, :func:`optimize_positions`, :func:`compare_maps`,
:func:`export_plugin`, :func:`import_tdann`, :func:`import_toponets`, :func:`import_cwm`
(see :mod:`neurocwm.api`). The science of cortical maps is the separate package
:mod:`topography`.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

__all__ = [
    "compare_maps",
    "export_plugin",
    "fit",
    "import_cwm",
    "import_tdann",
    "import_toponets",
    "layer_responses",
    "load_run",
    "optimize_positions",
    "predict_neural",
    "score_layers",
    "score_run",
]


def __getattr__(name: str):
    from neurocwm.api import EXPORTS

    if name not in EXPORTS:
        raise AttributeError(f"module 'neurocwm' has no attribute {name!r}")
    module, attr = EXPORTS[name].split(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
