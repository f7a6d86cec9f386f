"""The library's front door: what a script needs, by the names the command line uses.

``neurocwm`` re-exports these lazily (importing it does not start torch). Each is the function
behind a command: :func:`fit` (``neurocwm fit``), :func:`load_run`, :func:`layer_responses`,
:func:`score_layers` and :func:`score_run` (``neurocwm score``), :func:`predict_neural`
(``neurocwm predict``), :func:`optimize_positions` (``neurocwm positions optimize``),
:func:`compare_maps` (``neurocwm fmri compare``), :func:`export_plugin` (``neurocwm brainscore
export``) and the importers of published checkpoints.
"""

from __future__ import annotations

from pathlib import Path

#: Public name -> "module:attribute".
EXPORTS = {
    "load_run": "neurocwm.runs:load_run",
    "layer_responses": "neurocwm.features:layer_responses",
    "score_layers": "neurocwm.predictivity.api:score_layers",
    "score_run": "neurocwm.score:score_run",
    "predict_neural": "neurocwm.predict:predict",
    "optimize_positions": "neurocwm.positions:optimize_positions",
    "compare_maps": "neurocwm.fmri.compare:compare_maps",
    "export_plugin": "neurocwm.brainscore_export:export_plugin",
    "import_tdann": "neurocwm.imports.tdann:import_tdann",
    "import_toponets": "neurocwm.imports.toponets:import_toponets",
    "import_cwm": "neurocwm.imports.cwm:import_cwm",
    "fit": "neurocwm.api:fit",
}


def fit(**options) -> Path:
    """Train a model exactly as ``neurocwm fit`` does, with its options as keyword arguments.

    Parameters
    ----------
    **options
        The options of ``neurocwm fit --help`` by their Python names (``alpha=0.5``,
        ``out="runs/x"``, ``steps=200``, ``model="cwm"``, ``resume=True``, ``progress=False``,
        ``n_neighborhood_windows=5000``, ``threads=2``, ...). They are checked by the same parser
        as on the command line (ranges, choices), and the same presets fill the rest.

    Returns
    -------
    pathlib.Path
        The run folder (``config.json``, ``model.safetensors``, positions, ``metrics.jsonl``).

    Raises
    ------
    TypeError
        For an option ``neurocwm fit`` does not have (the message names it).
    ValueError
        For a value the command line would refuse (the parser's message).
    """
    import contextlib
    import io

    from neurocwm.cli import OneLineParser
    from neurocwm.cli import fit as fit_cli
    from neurocwm.cli._help import harden
    from neurocwm.threads import configure_threads

    parser = OneLineParser(prog="neurocwm")
    sub = parser.add_subparsers(dest="command")
    fit_cli.add_parser(sub)
    harden(parser)
    by_dest = {a.dest: a for a in sub.choices["fit"]._actions if a.option_strings and a.dest != "help"}
    argv = ["fit"]
    for name, value in options.items():
        action = by_dest.get(name)
        if action is None:
            raise TypeError(f"fit() got an unknown option {name!r}; the options are {', '.join(sorted(by_dest))}")
        flag = action.option_strings[0]
        if action.nargs == 0:  # a switch: --resume, --force, --no-progress (progress=False)
            if bool(value) != bool(action.default):
                argv.append(flag)
        elif value is not None:
            argv += [flag, str(value)]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit:
        raise ValueError(err.getvalue().strip().replace("neurocwm fit: error: ", "fit(): ")) from None
    if "threads" in options and options["threads"] is not None:
        configure_threads(int(options["threads"]))
    return Path(fit_cli.train(args))
