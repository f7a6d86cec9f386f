"""``python -m neurocwm``: the command line."""

from neurocwm.cli import main

if __name__ == "__main__":  # not when imported (e.g. by the API reference's autosummary)
    raise SystemExit(main())
