"""Options that several sub-commands share, each written once."""

from __future__ import annotations

__all__ = ["add_checkpoint", "add_device", "add_field_of_view", "add_no_progress"]


def add_checkpoint(p) -> None:
    """``--checkpoint``: which weights of a run to load."""
    p.add_argument("--checkpoint", default=None, help="weights file or checkpoint folder (default: the final weights)")


def add_device(p) -> None:
    """``--device``: where the network runs (cpu or cuda)."""
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the network runs")


def add_field_of_view(p) -> None:
    """``--field-of-view``: the visual angle of the model input, which sets the gratings' frequencies."""
    p.add_argument(
        "--field-of-view",
        type=float,
        default=None,
        metavar="DEG",
        help="degrees of visual angle the model input spans, for the gratings (frequencies in "
        "cycles/deg; default 8 deg per 224 px, the reference design at every size); "
        "frequencies above 0.45 cycles/pixel are left out",
    )


def add_no_progress(p, what: str = "progress bars") -> None:
    """``--no-progress``: hide the progress bars (or the download progress)."""
    p.add_argument("--no-progress", dest="progress", action="store_false", help=f"hide {what}")
