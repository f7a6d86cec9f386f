"""``neurocwm import FAMILY SOURCE``: turn a published checkpoint into a run folder.

Each family lives in ``neurocwm/cli/import_<family>.py`` with ``add_parser(sub)`` registering
its own sub-command under ``import``.
"""

from __future__ import annotations

import importlib

from ._help import command_group

#: Importable families, in help order.
FAMILIES: list[str] = ["tdann", "toponets", "cwm"]


def add_parser(sub) -> None:
    fam = command_group(
        sub,
        "import",
        "import a published checkpoint (TDANN, TopoNets, CWM) as a run folder",
        (
            "Import a published checkpoint, from a local file or by its name in the catalogue "
            "(data/models.json), into an ordinary run folder that every other command accepts."
        ),
        dest="family",
        metavar="FAMILY",
    )
    for name in FAMILIES:
        importlib.import_module(f"neurocwm.cli.import_{name}").add_parser(fam)
