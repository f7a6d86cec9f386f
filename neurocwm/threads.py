"""How many CPU threads a command uses, so that jobs sharing a machine slow each other down by
their fair share instead of spinning against each other.

OpenMP threads that wait for work spin (busy-wait) by default; two torch jobs on two cores then
fight over the cores and slow down many times more than the 2x their fair share costs. The CLI
therefore sets ``OMP_WAIT_POLICY=PASSIVE`` (waiting threads sleep) and, unless the user chose a
count (``--threads N`` or ``OMP_NUM_THREADS``), uses one thread per core that the other jobs
running *now* leave free, at least one. Both must be set before torch (and its OpenMP runtime)
starts. "Now" is the runnable-task count of ``/proc/loadavg``, sampled for a fraction of a second:
the 1-minute load average lags by minutes, so a job started just after other work (a ``pip
install``, the previous command) would see busy cores that are idle again.
"""

from __future__ import annotations

import math
import os
import time

#: Environment variables the thread count is written to (OpenMP, OpenBLAS, MKL), before torch starts.
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def busy_cores(samples: int = 10, interval: float = 0.02, path: str = "/proc/loadavg") -> float:
    """Cores that other tasks keep busy now: the mean runnable-task count of ``/proc/loadavg``.

    Parameters
    ----------
    samples : int, default 10
        Readings of ``path``, ``interval`` seconds apart (0.2 s in all by default); their mean is
        taken, so a job that pauses for a moment (loading data) still counts.
    interval : float, default 0.02
        Seconds between readings.
    path : str, default "/proc/loadavg"
        The Linux file whose fourth field is ``running/total`` tasks (threads included).

    Returns
    -------
    float
        Mean of ``running - 1`` over the readings (this process, reading the file, is one of the
        running tasks), at least 0. Where the file cannot be read (macOS, Windows) the 1-minute load
        average, or 0 where there is none.
    """
    counts = []
    for i in range(max(1, int(samples))):
        try:
            with open(path, encoding="ascii") as f:
                counts.append(max(0, int(f.read().split()[3].split("/")[0]) - 1))
        except (OSError, IndexError, ValueError):
            break
        if i + 1 < samples:
            time.sleep(interval)
    if counts:
        return sum(counts) / len(counts)
    try:  # pragma: no cover - no /proc (macOS, Windows)
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover
        return 0.0
    return load if math.isfinite(load) else 0.0


def default_threads(cores: int | None = None, load: float | None = None) -> int:
    """Threads for a new job: the cores that other jobs running now leave free, at least 1.

    Parameters
    ----------
    cores : int, optional
        Usable cores (default :func:`usable_cores`).
    load : float, optional
        Cores busy with other tasks (default :func:`busy_cores`: runnable tasks now).

    Returns
    -------
    int
        ``clip(round(cores - load), 1, cores)``; e.g. 2 on an idle 2-core machine (also just after
        other work has ended), 1 while another job keeps one or both of its cores busy.
    """
    cores = usable_cores() if cores is None else int(cores)
    if load is None:
        load = busy_cores()
    if not math.isfinite(load):
        load = 0.0
    return max(1, min(cores, math.floor(cores - load + 0.5)))


#: Set to the count the CLI chose by itself, so a later call can tell its own choice from the user's.
AUTO_MARK = "NEUROCWM_AUTO_THREADS"


def user_chose_threads(environ=os.environ) -> bool:
    """Whether ``OMP_NUM_THREADS`` was set by the user (not by :func:`configure_threads`' own choice)."""
    return "OMP_NUM_THREADS" in environ and environ.get(AUTO_MARK) != environ["OMP_NUM_THREADS"]


def configure_threads(threads: int | None = None, environ=os.environ) -> int:
    """Set the wait policy and thread count for this process (and the processes it starts).

    ``OMP_WAIT_POLICY`` is set to ``PASSIVE`` unless the user set it. The thread count is
    ``threads`` if given, else ``OMP_NUM_THREADS`` if the user set it, else :func:`default_threads`;
    it is written to :data:`THREAD_ENV` (where not set by the user). If torch is already imported
    (``neurocwm.cli.main`` called from Python), the environment no longer matters and only an
    explicit ``threads`` (``--threads``) is applied with ``torch.set_num_threads``, so a caller's
    own setting is kept. Returns the count in effect.
    """
    import sys

    environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    auto, explicit = False, threads is not None
    if threads is None and user_chose_threads(environ):
        try:
            threads = int(environ["OMP_NUM_THREADS"])
        except ValueError:
            threads = None
    if threads is None:
        threads, auto = default_threads(), True
    threads = max(1, int(threads))
    for name in THREAD_ENV:
        if name == "OMP_NUM_THREADS" or name not in environ or environ.get(AUTO_MARK) == environ[name]:
            environ[name] = str(threads)
    if auto:
        environ[AUTO_MARK] = str(threads)
    else:
        environ.pop(AUTO_MARK, None)
    torch = sys.modules.get("torch")
    if torch is not None:  # started already (a call from Python): only an explicit count changes it
        if explicit and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        return torch.get_num_threads()
    return threads
