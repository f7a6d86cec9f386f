"""Benchmark: every topographic analysis of ``neurocwm score`` on a 100k-unit layer.

Runs, one after the other in this process, the two benchmark scripts that time each vectorised
analysis of :mod:`topography` against a Python-loop baseline of the same algorithm and print the
ratio (figures in ``benchmarks/RESULTS.md``):

* ``analyses_v1.py`` - tuning curves and circular variance, preferred orientation (von Mises),
  smoothed orientation map, smoothness curve, pinwheels, on 100,352 V1 units and 640 gratings;
* ``analyses_vtc.py`` - patches, domain selectivity, wiring length, effective dimensionality, on a
  25,088-unit VTC layer and a 100,352-unit layer.

Position pre-optimisation has its own benchmark, ``swapopt.py``.

Run: ``python benchmarks/analyses.py`` (a few minutes on 2 cores); ``--quick`` for smaller sizes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import analyses_v1  # noqa: E402
import analyses_vtc  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (smoke test)")
    args = ap.parse_args()
    print("== V1 analyses ==", flush=True)
    analyses_v1.main(quick=args.quick)
    print("\n== VTC analyses, wiring, dimensionality ==", flush=True)
    sys.argv = [sys.argv[0]] + (["--quick"] if args.quick else [])
    analyses_vtc.main()


if __name__ == "__main__":
    main()
