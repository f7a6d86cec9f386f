"""How much a second job on the same machine slows a `neurocwm fit` down (issue 16, item 1).

Runs the real command line (`python -m neurocwm fit`, each job in its own run folder) first alone,
then two copies started at once, and reads each job's median seconds per step from its
``metrics.jsonl`` (the first ``--warmup`` steps left out). It does this for two thread policies,
side by side in the same invocation:

* ``neurocwm``: what the CLI now does by itself: ``OMP_WAIT_POLICY=PASSIVE`` (waiting threads
  sleep) and, without ``OMP_NUM_THREADS``, one thread per core that the jobs running now leave free;
* ``spinning``: the previous behaviour, every job using all cores with OpenMP's default active
  waiting (``OMP_NUM_THREADS=<cores>``, ``OMP_WAIT_POLICY=ACTIVE``).

It prints s/step alone, s/step with two jobs, and their ratio per policy. On 2 cores a fair share
is a ratio of about 2; the new-user report in issue 16 saw 16-54x with spinning threads.

    python benchmarks/shared_machine.py                                  # quick preset, 40 steps
    python benchmarks/shared_machine.py --steps 6 --warmup 2 --tiny      # smoke test (seconds)

Run it on an otherwise idle machine: other jobs change both numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TINY = ["--arch", "resnet18_w16", "--image-size", "32", "--batch-size", "8", "--neighborhood-windows", "300"]


def _env(policy: str, cores: int) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "OMP_NUM_THREADS",
            "OMP_WAIT_POLICY",
            "MKL_NUM_THREADS",
            "OPENBLAS_NUM_THREADS",
            "NEUROCWM_AUTO_THREADS",
        )
    }
    if policy == "spinning":
        env.update(OMP_NUM_THREADS=str(cores), OMP_WAIT_POLICY="ACTIVE")
    return env


def _start(out: Path, args: argparse.Namespace, env: dict) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "neurocwm", "fit", "--out", str(out), "--steps", str(args.steps)]
    cmd += ["--checkpoint-every", str(10**6), "--no-progress", "--seed", "0"]
    if args.tiny:
        cmd += TINY
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _seconds_per_step(out: Path, warmup: int) -> float:
    times = [json.loads(line)["step_time_s"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    return statistics.median(times[warmup:] or times)


def _threads(out: Path) -> int:
    return json.loads((out / "config.json").read_text())["threads"]


def _run(n_jobs: int, policy: str, args: argparse.Namespace, tmp: Path, cores: int) -> list[float]:
    outs = [tmp / f"{policy}-{n_jobs}-{i}" for i in range(n_jobs)]
    procs = [_start(o, args, _env(policy, cores)) for o in outs]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"a fit job failed ({p.returncode}): {err.decode()[-2000:]}")
    print(f"  {policy}, {n_jobs} job(s): threads chosen " + ", ".join(str(_threads(o)) for o in outs), flush=True)
    return [_seconds_per_step(o, args.warmup) for o in outs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=40, help="steps per job")
    ap.add_argument("--warmup", type=int, default=5, help="first steps left out of the median")
    ap.add_argument("--tiny", action="store_true", help="tiny model (smoke test of this script, not a measurement)")
    ap.add_argument("--policies", nargs="+", default=["neurocwm", "spinning"], choices=["neurocwm", "spinning"])
    args = ap.parse_args()
    if args.warmup >= args.steps:
        ap.error("--warmup must be smaller than --steps")
    from neurocwm.threads import usable_cores

    cores = usable_cores()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{platform.processor() or platform.machine()}, {cores} usable cores, load average {load:.2f} at start; "
        f"{'tiny model' if args.tiny else 'quick preset'}, {args.steps} steps per job"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for policy in args.policies:
            t0 = time.perf_counter()
            alone = _run(1, policy, args, Path(tmp), cores)[0]
            time.sleep(2)
            two = _run(2, policy, args, Path(tmp), cores)
            time.sleep(2)
            rows.append((policy, alone, two, time.perf_counter() - t0))
    print(f"{'policy':<10} {'alone s/step':>13} {'two jobs s/step':>17} {'slowdown':>9}")
    for policy, alone, two, _ in rows:
        both = statistics.mean(two)
        print(
            f"{policy:<10} {alone:13.3f} {both:17.3f} {both / alone:8.2f}x   (jobs: "
            + ", ".join(f"{t:.3f}" for t in two)
            + ")"
        )
    if len(rows) == 2:
        a, b = (statistics.mean(r[2]) / r[1] for r in rows)
        print(f"slowdown ratio {rows[1][0]} / {rows[0][0]}: {b / a:.2f}")


if __name__ == "__main__":
    main()
