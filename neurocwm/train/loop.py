"""The trainer shared by every model family: one process, or many under ``torchrun``.

``fit(options, task)`` resolves the configuration (task preset for the device, then the user's
options), prepares the run folder, trains with per-step cosine learning rate, logs metrics to
``metrics.jsonl`` and a progress bar, writes atomic checkpoints, and leaves the final weights in
``model.safetensors``. With ``resume=True`` it continues from the latest checkpoint; on the CPU
with a fixed seed the result equals an uninterrupted run of the same length. In a single process,
Ctrl-C or SIGTERM stops at the end of the current step and writes a checkpoint there first (a
second Ctrl-C stops at once), so ``--resume`` loses nothing.

A task object supplies the model family: a :class:`neurocwm.train.task.Task`, the declared
interface of every method the trainer calls (``default_config``, ``validate_config``,
``build_model``, ``setup``, ``make_batches``, ``compute_loss``, and the hooks ``check_inputs``,
``param_groups``, ``make_optimizer``, ``validate`` with default implementations). The families and
their tasks are registered in :mod:`neurocwm.families`.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

import torch
import torch.distributed as dist

from topography.fileio import write_json, write_text

from ..progress import progress_bar
from .checkpoint import (
    CheckpointError,
    checkpoint_dirs,
    checkpoint_problem,
    latest_checkpoint,
    load_checkpoint,
    load_weights,
    save_checkpoint,
    save_weights,
)
from .distributed import DistInfo, init_distributed
from .errors import ConfigError
from .lock import LOCK_NAME, RunLock
from .task import Task

RUN_FILES = ("config.json", "metrics.jsonl", "checkpoints", "positions", "model.safetensors", "model.json")
#: Options that may change when a run is resumed (everything else must match the run).
RESUMABLE_CHANGES = {
    "steps",
    "epochs",
    "resume",
    "force",
    "device",
    "workers",
    "progress",
    "checkpoint_every",
    "log_every",
    "out",
    "init_from",
    "threads",
}
#: Command-line flags whose names differ from their configuration keys.
FLAGS = {"n_neighborhood_windows": "--neighborhood-windows"}
#: Range of every numeric option: (type, lowest, lowest allowed?, highest). Checked before anything is written.
NUMBERS = {
    "steps": (int, 1, True, 10**9),
    "epochs": (float, 0, False, 10**6),
    "batch_size": (int, 1, True, 10**7),
    "image_size": (int, 1, True, 8192),
    "lr": (float, 0, True, 1e6),
    "weight_decay": (float, 0, True, 1e6),
    "alpha": (float, 0, True, 1e6),
    "neighborhoods_per_step": (int, 1, True, 10**6),
    "n_neighborhood_windows": (int, 1, True, 10**8),
    "position_jitter": (float, 0, True, 1e4),
    "workers": (int, 0, True, 1024),
    "checkpoint_every": (int, 1, True, 10**9),
    "seed": (int, 0, True, 2**32 - 1),
    "gap_ms": (float, 0, False, 1e7),
    "motion_weight": (float, 0, True, 1e6),
    "spot_density": (float, 0, True, 100),
    "camera_prob": (float, 0, True, 1),
    "glued_prob": (float, 0, True, 1),
    "fps": (float, 0, False, 1e6),
    "threads": (int, 1, True, 4096),
    "log_every": (int, 1, True, 10**9),
    "keep_checkpoints": (int, 1, True, 10**6),
    "warmup_steps": (int, 0, True, 10**9),
}
#: Options naming a file or folder: an empty string is refused rather than read as "not given".
PATH_OPTIONS = ("data", "positions", "init_from", "out", "arch")


def _flag(key: str) -> str:
    return FLAGS.get(key, "--" + key.replace("_", "-"))


def check_options(cfg: dict) -> None:
    """Refuse non-finite, out-of-range or mistyped numbers and empty paths (one line naming the flag).

    Raises
    ------
    ConfigError
    """
    for key, (kind, lo, lo_ok, hi) in NUMBERS.items():
        v = cfg.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not float(v).is_integer()):
            raise ConfigError(f"{_flag(key)} must be {'an integer' if kind is int else 'a number'}, got {v!r}")
        if not math.isfinite(v):
            raise ConfigError(f"{_flag(key)} must be a finite number, got {v}")
        if v < lo or (v == lo and not lo_ok) or v > hi:
            low = f">= {lo}" if lo_ok else f"> {lo}"
            raise ConfigError(f"{_flag(key)} must be {low} and <= {hi:g}, got {v}")
    for key in PATH_OPTIONS:
        v = cfg.get(key)
        if v is not None and (not isinstance(v, str) or not v.strip()):
            raise ConfigError(f"{_flag(key)} must not be empty")


def read_run_config(run_dir: Path) -> dict:
    """The ``config.json`` of a run folder (a one-line error naming the file if it is damaged)."""
    f = Path(run_dir) / "config.json"
    try:
        cfg = json.loads(f.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{f} is not valid JSON ({exc})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{f} does not hold a run configuration (a JSON object)")
    return cfg


def resolve_config(options: dict, task: Task, device: torch.device, world: int) -> dict:
    """Task defaults for the device type, overlaid with the user's non-None options.

    With ``resume`` and a run in ``out``, the run's own ``config.json`` comes between the two, so
    ``--resume`` needs no other option; an option given that disagrees with the run is refused
    by :func:`_check_run_dir` (except those in :data:`RESUMABLE_CHANGES`).
    """
    given = {k: v for k, v in options.items() if v is not None}
    check_options(given)
    cfg = task.default_config(device.type)
    out = Path(given["out"]).expanduser() if given.get("out") else None
    if given.get("resume") and out is not None and (out / "config.json").is_file():
        old = read_run_config(out)
        if "steps" in given:  # --steps and --epochs exclude each other: the one given wins
            old.pop("epochs", None)
        elif "epochs" in given:
            old.pop("steps", None)
        cfg.update({k: v for k, v in old.items() if k not in ("device_type", "world_size", "n_images")})
    cfg.update(given)
    cfg["_given"] = sorted(given)
    cfg.setdefault("seed", 0)
    cfg.setdefault("amp", device.type == "cuda")
    cfg.setdefault("channels_last", device.type == "cuda")
    cfg.setdefault("log_every", 1)
    cfg.setdefault("keep_checkpoints", 2)
    cfg["device_type"] = device.type
    cfg["world_size"] = world
    check_options(cfg)
    if cfg["batch_size"] % world:
        raise ConfigError(f"--batch-size {cfg['batch_size']} is not divisible by the {world} processes")
    try:
        cfg = task.validate_config(cfg)
    except (ValueError, FileNotFoundError) as exc:
        raise ConfigError(str(exc)) from None
    if cfg.get("epochs") is not None and int(cfg.get("steps") or 0) < 1:
        raise ConfigError(f"--epochs {cfg['epochs']} is less than one step (batch size {cfg['batch_size']})")
    check_options(cfg)
    if cfg.get("data") is not None:
        cfg["data"] = str(Path(cfg["data"]).expanduser().resolve())
    cfg["out"] = str(Path(cfg["out"]).expanduser().resolve())
    if cfg.get("resume") and (Path(cfg["out"]) / "config.json").is_file():
        # a resumed run keeps the starting point it recorded (its checkpoints override it anyway)
        cfg["init_from"] = read_run_config(Path(cfg["out"])).get("init_from")
    elif cfg.get("init_from") is not None:
        cfg["init_from"] = str(_init_weights(cfg["init_from"]))
    return cfg


def _init_weights(path: str | Path) -> Path:
    """The weights file ``--init-from`` names: a run folder (its final weights, else its latest
    checkpoint), a checkpoint folder, or a ``.safetensors`` file."""
    from ..runs import weights_file

    p = Path(path).expanduser().resolve()
    if not p.exists():
        raise ConfigError(f"--init-from {p}: no such run folder or weights file")
    try:
        w = weights_file(p) if (p / "config.json").is_file() else weights_file(p.parent, p)
    except FileNotFoundError as exc:
        raise ConfigError(f"--init-from: {exc}") from None
    if not w.is_file():
        raise ConfigError(f"--init-from {p}: no weights file at {w}")
    return w


def _check_run_dir(cfg: dict, defaults: dict | None = None) -> tuple[Path, bool]:
    """Return (run_dir, resuming). Refuse a folder holding a different run unless asked.

    Only the options the user gave (``cfg["_given"]``) are compared with the run's ``config.json``
    on resume; the others were taken from it.
    """
    run_dir = Path(cfg["out"])
    cfg_file = run_dir / "config.json"
    for parent in [run_dir, *run_dir.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"--out {run_dir}: {parent} is a file, not a folder")
            break
    if cfg_file.exists():
        if cfg.get("force"):
            return run_dir, False
        if not cfg.get("resume"):
            raise ConfigError(
                f"--out {run_dir} already holds a run; pass --resume to continue it or --force to overwrite it"
            )
        old = read_run_config(run_dir)
        given = set(cfg.get("_given", cfg))
        defaults = defaults or {}
        # a key the run's config lacks (a setting added after the run was written) is no difference
        # when the task's default is asked for, which keeps the run's behaviour; any other value is
        diffs = sorted(
            k
            for k in given
            if k not in RESUMABLE_CHANGES
            and k not in ("n_images", "_given")
            and old.get(k) != cfg.get(k)
            and not (k not in old and k in defaults and cfg.get(k) == defaults[k])
        )
        if diffs:
            detail = ", ".join(f"{_flag(k)}: run has {old.get(k)!r}, asked {cfg.get(k)!r}" for k in diffs[:4])
            raise ConfigError(
                f"cannot resume {run_dir} with different settings ({detail}); leave them out to use the run's"
            )
        return run_dir, True
    if cfg.get("resume"):
        raise ConfigError(f"--resume: {run_dir} holds no run to resume")
    if run_dir.is_dir() and any(p.name != LOCK_NAME for p in run_dir.iterdir()) and not cfg.get("force"):
        raise ConfigError(
            f"--out {run_dir} is not empty and holds no neurocwm run; choose another folder or pass --force"
        )
    return run_dir, False


def _clean_temporaries(run_dir: Path) -> None:
    """Remove dot-named temporaries that interrupted atomic writes left (only while holding the lock)."""
    for folder in (run_dir, run_dir / "checkpoints", run_dir / "positions"):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if (
                p.name.startswith(".")
                and p.name != LOCK_NAME
                and (p.name.startswith(".step_") or any(p.name.startswith(f".{n}.") for n in _TEMP_NAMES))
            ):
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


#: Files written atomically inside a run folder (their temporaries are named ``.<name>.<random>``).
_TEMP_NAMES = (
    "config.json",
    "metrics.jsonl",
    "model.safetensors",
    "model.json",
    "latest.json",
    "positions.safetensors",
    "positions.json",
    "neighborhoods.safetensors",
)


def _clear_run(run_dir: Path) -> None:
    for name in RUN_FILES:
        p = run_dir / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def cosine_lr(base: float, step: int, total: int) -> float:
    """Per-step cosine decay from ``base`` to 0 over ``total`` steps, no warm-up."""
    return base * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))


def warmup_cosine_lr(base: float, step: int, total: int, warmup: int = 0) -> float:
    """Linear warm-up to ``base`` over ``min(warmup, total // 10)`` steps, then :func:`cosine_lr`.

    ``warmup`` 0 (the default) is exactly :func:`cosine_lr`. The cap at a tenth of the run keeps a
    short run (tests, smoke) from spending itself in the warm-up.
    """
    w = min(int(warmup), total // 10)
    if w <= 0:
        return cosine_lr(base, step, total)
    if step < w:
        return base * (step + 1) / w
    return cosine_lr(base, step - w, total - w)


def _truncate_metrics(path: Path, step: int) -> None:
    """Keep only complete metric lines up to ``step`` (a kill may have cut the last line)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("step", 0) <= step:
            keep.append(line)
    write_text(path, "".join(k + "\n" for k in keep))


def fit(options: dict, task: Task) -> Path:
    """Train a model of ``task``'s family as ``options`` say; return the run folder.

    Raises
    ------
    TypeError
        If ``task`` is not a :class:`neurocwm.train.task.Task`.
    """
    if not isinstance(task, Task):
        raise TypeError(f"fit needs a neurocwm.train.task.Task, got {type(task).__name__}")
    dist_info = init_distributed(options.get("device", "auto"))
    try:
        return _fit(options, task, dist_info)
    finally:
        if dist_info.initialized:
            dist.destroy_process_group()


def _fit(options: dict, task: Task, d: DistInfo) -> Path:
    device = d.device
    cfg = resolve_config(options, task, device, d.world)
    defaults = task.default_config(device.type)
    if d.is_main:
        _check_run_dir(cfg, defaults)  # read-only: nothing is written before the run can start
    torch.manual_seed(cfg["seed"])
    model = task.build_model(cfg).to(device)
    if cfg.get("init_from") and not (cfg.get("resume") and latest_checkpoint(Path(cfg["out"]), warn=False) is not None):
        # before the run folder is touched (a bad file leaves nothing behind); a checkpoint of this run overrides it
        try:
            load_weights(model, Path(cfg["init_from"]))
        except CheckpointError as exc:
            raise ConfigError(f"--init-from: {exc}") from None
        except (ValueError, RuntimeError) as exc:
            raise ConfigError(
                f"--init-from {cfg['init_from']}: weights do not fit this model (same architecture and sizes needed): "
                f"{str(exc)[:300]}"
            ) from None
    task.check_inputs(cfg, model)  # e.g. that --positions fit the model, before the folder is written
    run_dir = Path(cfg["out"])
    lock, new_dir = None, False
    if d.is_main:
        new_dir = not run_dir.exists()
        run_dir.mkdir(parents=True, exist_ok=True)
        lock = RunLock(run_dir)
        try:
            lock.acquire()
            _check_run_dir(cfg, defaults)  # again, under the lock: another process may have written a run meanwhile
        except BaseException:
            lock.release()
            if new_dir:
                with contextlib.suppress(OSError):
                    run_dir.rmdir()
            raise
    progress = {"started": False, "resuming": bool(cfg.get("resume")) and (run_dir / "config.json").exists()}
    try:
        return _fit_locked(cfg, task, d, model, run_dir, progress)
    except BaseException:
        if d.is_main and not progress["started"] and not progress["resuming"]:
            _clear_run(run_dir)  # a run that never made a step leaves nothing, so a corrected rerun is not refused
        raise
    finally:
        if lock is not None:
            lock.release()
            if new_dir and not progress["started"] and not progress["resuming"]:
                with contextlib.suppress(OSError):
                    run_dir.rmdir()  # only if empty


def _fit_locked(cfg: dict, task: Task, d: DistInfo, model: torch.nn.Module, run_dir: Path, progress: dict) -> Path:
    saved_cfg = _start_run_folder(cfg, d, run_dir, progress["resuming"])
    if cfg.get("channels_last"):
        model = model.to(memory_format=torch.channels_last)
    task.setup(cfg, model, run_dir, d.device, d.is_main, d.barrier)
    optimizer = task.make_optimizer(task.param_groups(model, cfg), cfg)

    start = 0
    if progress["resuming"]:
        start = _restore(run_dir, model, optimizer, d.is_main)
    if d.is_main:
        _truncate_metrics(run_dir / "metrics.jsonl", start)
    train_model = _distributed_model(model, cfg, d)
    total = int(cfg["steps"])
    if start >= total:
        if d.is_main:
            _write_final(run_dir, model, cfg, total)
        return run_dir

    run = _Training(cfg, task, d, model, train_model, optimizer, run_dir, saved_cfg, total)
    n_bad = run.steps(start, progress)
    if n_bad and d.is_main:
        warnings.warn(f"skipped {n_bad} unreadable image file(s) during training", stacklevel=2)
    if d.is_main:
        run.checkpoint(total)
        _write_final(run_dir, model, cfg, total)
    d.barrier()
    return run_dir


def _saved_config(cfg: dict) -> dict:
    """The configuration a run records (without the one-off ``resume``, ``force`` and ``_given``)."""
    return {k: v for k, v in cfg.items() if k not in ("resume", "force", "_given")}


def _start_run_folder(cfg: dict, d: DistInfo, run_dir: Path, resuming: bool) -> dict:
    """Clean (or, with ``force``, clear) the run folder, write ``config.json``; return what it holds."""
    if d.is_main:
        _clean_temporaries(run_dir)
        if cfg.get("force") and not resuming:
            _clear_run(run_dir)
    d.barrier()
    saved_cfg = _saved_config(cfg)
    if d.is_main:
        write_json(run_dir / "config.json", saved_cfg)
    return saved_cfg


def _distributed_model(model: torch.nn.Module, cfg: dict, d: DistInfo) -> torch.nn.Module:
    """The model the steps train: ``model`` itself, or wrapped for several processes (SyncBatchNorm, DDP)."""
    train_model = model
    if d.world > 1:
        if d.device.type == "cuda" and cfg.get("sync_bn", True):
            train_model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        train_model = torch.nn.parallel.DistributedDataParallel(
            train_model, device_ids=[d.device.index] if d.device.type == "cuda" else None
        )
    return train_model


def _autocast(cfg: dict, device: torch.device):
    """bf16 autocast on CUDA with ``amp``, else a no-op context."""
    if cfg.get("amp") and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _to_channels_last(batch: dict) -> dict:
    """The batch with every 4-D tensor in channels-last memory format."""
    return {
        k: (v.contiguous(memory_format=torch.channels_last) if torch.is_tensor(v) and v.dim() == 4 else v)
        for k, v in batch.items()
    }


class _Training:
    """The steps of one run after its set-up: optimise, log, checkpoint, stop on request."""

    def __init__(self, cfg, task, d, model, train_model, optimizer, run_dir, saved_cfg, total):
        self.cfg, self.task, self.d, self.total = cfg, task, d, total
        self.model, self.train_model, self.optimizer = model, train_model, optimizer
        self.run_dir, self.saved_cfg = run_dir, saved_cfg

    def steps(self, start: int, progress: dict) -> int:
        """Run steps ``start`` to the end (``progress["started"]`` set at the first); return the images skipped."""
        cfg, d = self.cfg, self.d
        batches = self.task.make_batches(cfg, d.rank, d.world, start, d.device)
        amp = _autocast(cfg, d.device)
        bar = progress_bar(
            total=self.total,
            initial=start,
            desc=f"fit {self.task.name}",
            unit="step",
            disable=not d.is_main or not cfg.get("progress", True),
            dynamic_ncols=True,
        )
        metrics_file = open(self.run_dir / "metrics.jsonl", "a") if d.is_main else None
        n_bad, bad_files = 0, set()
        self.train_model.train()
        stop = _StopRequest() if d.world == 1 else contextlib.nullcontext(None)
        try:
            with stop as stop:
                for step in range(start, self.total):
                    t0 = time.perf_counter()
                    batch = next(batches)
                    n_bad = self._count_bad(batch, bad_files, n_bad, bar)
                    if batch.get("empty"):
                        continue
                    if cfg.get("channels_last"):
                        batch = _to_channels_last(batch)
                    metrics = self._step(batch, step, amp, t0)
                    if n_bad:
                        metrics["skipped_images"] = n_bad
                    if cfg.get("validate_every") and (step + 1) % cfg["validate_every"] == 0:
                        metrics.update(self.task.validate(self.model, step + 1))
                        self.train_model.train()
                    progress["started"] = True
                    if d.is_main:
                        self._log(metrics, step, bar, metrics_file)
                    self._checkpoint_or_stop(step, stop, bar)
        finally:
            bar.close()
            if metrics_file:
                metrics_file.close()
        return n_bad

    def _count_bad(self, batch: dict, bad_files: set, n_bad: int, bar) -> int:
        """Report each unreadable image of the batch once; return the count so far."""
        for path, why in batch.get("bad") or ():
            if path not in bad_files and self.d.is_main:
                bar.write(f"skipping unreadable image {path} ({why})", file=sys.stderr)
            bad_files.add(path)
        return len(bad_files) if bad_files else n_bad + int(batch.get("n_bad", 0))

    def _step(self, batch: dict, step: int, amp, t0: float) -> dict:
        """One optimizer step at the scheduled learning rate; return its metrics."""
        cfg, device = self.cfg, self.d.device
        lr = warmup_cosine_lr(cfg["lr"], step, self.total, int(cfg.get("warmup_steps") or 0))
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        with amp:
            loss, metrics = self.task.compute_loss(self.train_model, batch, step, self.d.rank)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {float(loss)} at step {step}; lower --lr or check the data")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        dt = time.perf_counter() - t0
        n_img = cfg["batch_size"]
        metrics.update({"step": step + 1, "lr": lr, "images_per_s": n_img / dt, "step_time_s": dt})
        return metrics

    def _log(self, metrics: dict, step: int, bar, metrics_file) -> None:
        """Append the step's metrics to ``metrics.jsonl`` (every ``log_every`` and the last) and move the bar."""
        if (step + 1) % self.cfg["log_every"] == 0 or step + 1 == self.total:
            metrics_file.write(json.dumps(metrics) + "\n")
            metrics_file.flush()
        post = {"loss": f"{metrics['loss']:.3f}", "img/s": f"{metrics['images_per_s']:.0f}"}
        if "spatial_loss" in metrics:
            post["sl"] = f"{metrics['spatial_loss']:.3f}"
        bar.set_postfix(post, refresh=False)
        bar.update(1)

    def _checkpoint_or_stop(self, step: int, stop, bar) -> None:
        """Checkpoint every ``checkpoint_every`` steps; on a stop request, checkpoint here and stop."""
        if (step + 1) % self.cfg["checkpoint_every"] == 0 and step + 1 < self.total:
            if self.d.is_main:
                self.checkpoint(step + 1)
            self.d.barrier()
        elif stop is not None and stop.requested and step + 1 < self.total:
            self.checkpoint(step + 1)
        if stop is not None and stop.requested and step + 1 < self.total:  # read again: a signal during the save
            bar.close()
            print(
                f"stopped at step {step + 1} of {self.total}; checkpoint written. Continue with: neurocwm fit "
                f"--out {self.run_dir} --resume",
                flush=True,
            )
            raise KeyboardInterrupt

    def checkpoint(self, step: int) -> None:
        """Save a checkpoint at ``step`` (refused for non-finite weights)."""
        _check_finite(self.model, step)
        save_checkpoint(
            self.run_dir,
            step,
            self.model,
            self.optimizer,
            {"config": self.saved_cfg},
            keep=self.cfg["keep_checkpoints"],
        )


class _StopRequest(contextlib.AbstractContextManager):
    """While active (main thread only), the first SIGINT / SIGTERM sets :attr:`requested` instead
    of interrupting, so the trainer can finish the step and checkpoint; a second one interrupts."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict = {}

    def _handler(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return None


def _restore(run_dir: Path, model: torch.nn.Module, optimizer, is_main: bool) -> int:
    """Load the newest intact checkpoint of ``run_dir`` (older ones if a newer one fails to load) and
    return its step; 0 (with a note) if the run never reached one. Never starts over silently: a
    run whose checkpoints are all damaged is refused."""
    skipped = []
    for _, path in checkpoint_dirs(run_dir):
        why = checkpoint_problem(path)
        if why is None:
            try:
                state = load_checkpoint(path, model, optimizer)
            except (CheckpointError, KeyError, ValueError) as exc:
                why = f"{type(exc).__name__}: {exc}"
            else:
                if skipped and is_main:
                    warnings.warn(
                        f"skipped damaged checkpoint(s) {'; '.join(skipped)}; resuming from {path.name}", stacklevel=2
                    )
                return int(state["step"])
        skipped.append(f"{path.name} ({why})")
    if checkpoint_dirs(run_dir):
        names = ", ".join(p.name for _, p in checkpoint_dirs(run_dir))
        raise ConfigError(
            f"--resume: no intact checkpoint in {run_dir / 'checkpoints'} ({names} damaged); "
            "pass --force instead of --resume to start the run over"
        )
    if is_main:
        print(f"note: {run_dir} has no checkpoint yet; the run starts again from step 0", flush=True)
    return 0


def _check_finite(model: torch.nn.Module, step: int) -> None:
    """Refuse to save non-finite weights (e.g. from a learning rate so high that the last update diverged)."""
    for name, t in model.state_dict().items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise FloatingPointError(
                f"the weights became non-finite at step {step} ({name}); nothing was saved for "
                "this step; lower --lr or check the data"
            )


def _write_final(run_dir: Path, model: torch.nn.Module, cfg: dict, step: int) -> None:
    _check_finite(model, step)
    meta = {"step": step, "config": _saved_config(cfg)}
    save_weights(model, run_dir / "model.safetensors", meta)
    write_json(run_dir / "model.json", meta)
