"""Dataset manifests (``data/datasets.json``): sources, licences, citations, layout, checksums."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path


@lru_cache(maxsize=1)
def load_manifest() -> dict:
    """The manifest of every dataset the toolkit reads (shipped with the package)."""
    return json.loads(resources.files("neurocwm.datasets").joinpath("datasets.json").read_text())


def sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def verify_dataset(name: str, root: str | Path) -> dict[str, bool]:
    """Check the files of dataset ``name`` under ``root`` against the manifest checksums.

    Returns
    -------
    dict
        Relative path -> True when the checksum matches.

    Raises
    ------
    KeyError
        Unknown dataset name.
    FileNotFoundError
        A listed file is missing.
    """
    manifest = load_manifest()
    if name not in manifest:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(manifest))}")
    out = {}
    for rel, digest in manifest[name].get("sha256", {}).items():
        path = Path(root) / rel
        if not path.is_file():
            raise FileNotFoundError(f"{name}: expected {path} (layout: {manifest[name]['layout']})")
        out[rel] = sha256(path) == digest
    return out
