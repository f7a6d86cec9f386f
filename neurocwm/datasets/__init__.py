"""Stimulus sets and datasets used to probe models (fLoc, sine gratings, ...)."""
