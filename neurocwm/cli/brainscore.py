"""``neurocwm brainscore``: Brain-Score tooling (``export``: a model plugin for submission)."""

from __future__ import annotations

import argparse

from ._args import call
from ._help import command, command_group
from ._options import add_checkpoint


def add_parser(sub) -> None:
    bs = command_group(
        sub,
        "brainscore",
        "Brain-Score tooling: export a run as a model plugin",
        "Brain-Score tooling.",
        dest="brainscore_command",
        metavar="ACTION",
    )
    e = command(
        bs,
        "export",
        "write a Brain-Score model plugin (zip) and the weights file to host",
        (
            "Write submission.zip with models/<id>/{__init__.py, model.py, test.py, requirements.txt, "
            "region_layer_map/<id>.json} in Brain-Score's plugin layout (torch only, no neurocwm import), and "
            "the weights file (<id>.pt: trunk state dict + unit positions) next to it. Upload the weights "
            "file to --weights-url; the plugin downloads it at load time and checks its sha256."
        ),
        run_export,
    )
    e.add_argument("run", help="run folder written by neurocwm fit, neurocwm import tdann or neurocwm import toponets")
    e.add_argument("--weights-url", required=True, help="where the weights file will be hosted (https://, file://)")
    e.add_argument("--out", required=True, help="zip file to write (e.g. submission.zip)")
    e.add_argument("--weights-out", default=None, help="where to write the weights file (default: <out dir>/<id>.pt)")
    add_checkpoint(e)
    e.add_argument(
        "--identifier", default=None, help="model identifier (default: <tdann|toponets>_<arch>_<run>_<sha256[:10]>)"
    )
    e.add_argument(
        "--region-layer-map",
        default=None,
        help="V1=layer2.0,V2=layer3.0,... or a JSON file (default: RUN/predictivity commitments, "
        "then the sheet's areas)",
    )
    e.add_argument(
        "--visual-degrees",
        type=float,
        default=8.0,
        help="degrees of visual angle the model's input image spans (Brain-Score's visual_degrees)",
    )
    e.add_argument("--force", action="store_true", help="overwrite --out and the weights file")


def run_export(args: argparse.Namespace) -> int:
    from neurocwm.brainscore_export import export_plugin, parse_region_layer_map

    rlm = parse_region_layer_map(args.region_layer_map) if args.region_layer_map else None
    res = call(export_plugin, args, args.run, region_layer_map=rlm)
    print(f"model identifier: {res['identifier']}")
    print(f"region -> layer ({res['region_layer_map_source']}): {res['region_layer_map']}")
    print(f"wrote {res['zip']}")
    print(f"wrote {res['weights']} (sha256 {res['sha256']}); upload it to {res['weights_url']}")
    return 0
