"""Cortical-sheet science: unit positions, neighbourhoods, spatial losses and map analyses.

Plain numpy / torch. This package never imports :mod:`neurocwm`, so the same functions
serve a model's simulated cortical sheet and a human cortex (vertex or pixel positions in mm).
"""

__version__ = "0.1.0"
