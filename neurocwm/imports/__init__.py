"""Importers of published checkpoints into ordinary neurocwm run folders.

One module per model family (``tdann``, ``toponets``, ``cwm``). Each keeps apart, as timm does,
(1) finding the file (:mod:`neurocwm.hub`), (2) translating the publisher's keys into ours, strictly,
and (3) writing the run folder.
"""
