"""Reading published pickles without running them.

Two readers, both refusing anything outside an explicit allow-list before it is built:

* :func:`load_layer_positions_pickle` - a ``spacetorch.models.positions.LayerPositions``
  dataclass pickled by the TDANN code (Margalit et al. 2024, Neuron). A restricted
  :class:`pickle.Unpickler` whose ``find_class`` resolves only that class name (to an inert
  stand-in), numpy's array / dtype / scalar reconstructors and nothing else; plain built-in values
  (str, int, float, tuple, list, dict, bytes) need no class lookup at all.
* :func:`load_torch_checkpoint` - a ``torch.save`` file, read with ``torch.load(...,
  weights_only=True)`` under an explicit allow-list of numpy reconstructors (tensors, containers
  and numbers are torch's own safe set). A checkpoint that names any other global is refused.

A refusal is a one-line :class:`ValueError` naming the offending global; nothing of the file is
executed.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["UnsafePickleError", "PublishedLayerPositions", "load_layer_positions_pickle", "load_torch_checkpoint"]

#: Module and name of the pickled positions dataclass of the TDANN code.
LAYER_POSITIONS_GLOBAL = ("spacetorch.models.positions", "LayerPositions")


class UnsafePickleError(ValueError):
    """A pickle names a global outside the allow-list (it is refused, never executed)."""


class PublishedLayerPositions:
    """Inert stand-in for ``spacetorch.models.positions.LayerPositions``: it only receives the
    pickled field values (``name``, ``dims``, ``coordinates``, ``neighborhood_indices``,
    ``neighborhood_width``) as attributes; it has no behaviour."""

    FIELDS = ("name", "dims", "coordinates", "neighborhood_indices", "neighborhood_width")

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots) form
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, dict):
            raise UnsafePickleError(f"LayerPositions state must be a dict, got {type(state).__name__}")
        unknown = [k for k in state if k not in self.FIELDS]
        if unknown:
            raise ValueError(f"LayerPositions pickle has unexpected field {unknown[0]!r}")
        self.__dict__.update(state)


def _np_attr(*paths: str):
    for path in paths:
        mod, _, name = path.rpartition(".")
        try:
            module = __import__(mod, fromlist=[name])
            return getattr(module, name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"none of {paths} is importable")


def _reconstructor(cls, base, state):
    """``copyreg._reconstructor`` limited to the stand-in class on ``object`` (protocol 0/1 pickles)."""
    if cls is not PublishedLayerPositions or base is not object or state is not None:
        raise UnsafePickleError("copyreg._reconstructor is only allowed for LayerPositions")
    return object.__new__(cls)


def _latin1_bytes(text, encoding="latin1"):
    """``_codecs.encode`` as protocol 0-2 pickles use it for bytes: latin-1 only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("_codecs.encode is only allowed as latin-1 bytes")
    return text.encode("latin1")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    reconstruct = _np_attr("numpy._core.multiarray._reconstruct", "numpy.core.multiarray._reconstruct")
    scalar = _np_attr("numpy._core.multiarray.scalar", "numpy.core.multiarray.scalar")
    frombuffer = _np_attr("numpy._core.numeric._frombuffer", "numpy.core.numeric._frombuffer")
    allowed: dict[tuple[str, str], Any] = {
        LAYER_POSITIONS_GLOBAL: PublishedLayerPositions,
        ("copyreg", "_reconstructor"): _reconstructor,
        ("builtins", "object"): object,
        # protocol 0-2 pickles name them as Python 2 did
        ("copy_reg", "_reconstructor"): _reconstructor,
        ("__builtin__", "object"): object,
        ("_codecs", "encode"): _latin1_bytes,
    }
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = reconstruct
        allowed[(mod, "scalar")] = scalar
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(mod, "_frombuffer")] = frombuffer
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    return allowed


class _PositionsUnpickler(pickle.Unpickler):
    # safe: find_class resolves only the allow-list above (an inert stand-in class and numpy's
    # array/dtype/scalar reconstructors); every other global is refused before it is looked up.
    def __init__(self, fh):
        super().__init__(fh)
        self._allowed = _allowed_globals()

    def find_class(self, module: str, name: str):
        obj = self._allowed.get((module, name))
        if obj is None:
            raise UnsafePickleError(f"refused to unpickle global {module}.{name} (not a LayerPositions field type)")
        return obj

    def persistent_load(self, pid):
        raise UnsafePickleError("refused a pickle with persistent ids")


def load_layer_positions_pickle(path: str | Path) -> PublishedLayerPositions:
    """Read one ``<layer>.pkl`` of a spacetorch positions folder without executing it.

    Parameters
    ----------
    path : path
        A pickled ``spacetorch.models.positions.LayerPositions`` (fields ``name``, ``dims``
        (C, H, W), ``coordinates`` (N, 2) mm, ``neighborhood_indices`` (P, Q),
        ``neighborhood_width`` mm).

    Returns
    -------
    PublishedLayerPositions
        The field values; numeric arrays only (object arrays are refused).

    Raises
    ------
    UnsafePickleError
        If the pickle names any other global (e.g. ``os.system``); nothing is executed.
    ValueError
        If the file is not a readable pickle of that dataclass.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            obj = _PositionsUnpickler(fh).load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{path}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise ValueError(f"{path} is not a readable LayerPositions pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, PublishedLayerPositions):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a spacetorch LayerPositions")
    missing = [f for f in PublishedLayerPositions.FIELDS if f not in vars(obj)]
    if missing:
        raise ValueError(f"{path}: LayerPositions pickle lacks field {missing[0]!r}")
    for field in ("coordinates", "neighborhood_indices"):
        arr = getattr(obj, field)
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
            raise ValueError(f"{path}: {field} must be a numeric array, got {type(arr).__name__}")
    return obj


def _torch_allow_list() -> list:
    """numpy reconstructors a checkpoint may name (as numpy 1.x and 2.x write them)."""
    out: list = []
    reconstruct = _np_attr("numpy._core.multiarray._reconstruct", "numpy.core.multiarray._reconstruct")
    scalar = _np_attr("numpy._core.multiarray.scalar", "numpy.core.multiarray.scalar")
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        out += [(reconstruct, f"{mod}._reconstruct"), (scalar, f"{mod}.scalar")]
    out += [np.ndarray, np.dtype]
    out += [type(np.dtype(t)) for t in ("f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "?")]
    return out


def load_torch_checkpoint(path: str | Path, extra_globals: tuple = ()) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU with an explicit numpy allow-list.

    ``extra_globals`` admits a family's own inert classes besides it (e.g. ``argparse.Namespace``
    for the training arguments a CWM checkpoint holds).

    Raises
    ------
    UnsafePickleError
        If the file names a global outside torch's safe set and the numpy reconstructors (it is
        never executed).
    ValueError
        If the file is not a readable torch checkpoint (truncated, corrupt, another format).
    FileNotFoundError
        If there is no file.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        with torch.serialization.safe_globals(_torch_allow_list() + list(extra_globals)):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        lines = [ln.strip() for ln in msg.splitlines() if "Unsupported global" in ln or "GLOBAL" in ln]
        if lines:
            raise UnsafePickleError(
                f"{path}: refused by weights_only loading ({lines[0]}); the file is not executed"
            ) from None
        detail = next(
            (ln.strip() for ln in msg.splitlines() if "Unsupported" in ln), msg.splitlines()[0] if msg else ""
        )
        raise ValueError(f"{path} is not a readable torch checkpoint ({detail})") from None
    except Exception as exc:  # noqa: BLE001 - a corrupt file fails in many ways inside torch.load: all "unreadable"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{path} is not a readable torch checkpoint ({first})") from None
