"""neurocwm: train topographic vision networks and counterfactual world models,
map their units onto cortex and score them against brain data."""

__version__ = "0.1.0"
