"""Published-model catalogue and download cache.

:func:`resolve` turns what a user typed (a local path, or the name of a catalogue entry) into a
local file or folder:

* the catalogue is ``data/models.json`` (shipped in the package as
  ``neurocwm/imports/models.json``): one entry per published file with ``name``, ``family``,
  ``kind``, ``url``, ``filename``, ``size``, ``sha256``, ``citation``, ``licence`` and optional
  ``notes`` / ``variant`` / ``manual`` (``true`` when ``url`` is a project page, not the file);
* files are cached under ``$NEUROCWM_HOME/<family>/<name>/<filename>`` (default
  ``~/.cache/neurocwm``);
* offline-first: a cached file whose sha256 matches is used without touching the network;
* a download streams to a temporary file beside the target with a progress bar (tqdm on a
  terminal, a line every 10 % otherwise), checks size and sha256, then renames into place;
* the sha256 is recorded on first download (``<filename>.sha256`` beside it) when the catalogue
  has none, and checked on every later use; a cached file that does not match is refused;
* no network, or a manual entry: a one-line error naming the URL and the path to put the file at
  by hand.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import urllib.error
import urllib.request
from functools import lru_cache
from importlib import resources
from pathlib import Path

from topography.fileio import atomic_path, write_text

__all__ = ["ENV_HOME", "DownloadError", "home", "catalogue", "entry", "entries", "cache_path", "resolve", "sha256_of"]

ENV_HOME = "NEUROCWM_HOME"
FAMILIES = ("tdann", "toponets", "cwm")
_CHUNK = 1 << 20


class DownloadError(FileNotFoundError):
    """A catalogue file is not cached and could not be fetched (no network, manual entry, bad URL)."""


def home() -> Path:
    """The cache root: ``$NEUROCWM_HOME``, else ``~/.cache/neurocwm``."""
    env = os.environ.get(ENV_HOME)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "neurocwm"


@lru_cache(maxsize=1)
def catalogue() -> dict:
    """The catalogue as shipped with the package (``neurocwm/imports/models.json``)."""
    return json.loads(resources.files("neurocwm.imports").joinpath("models.json").read_text())


def entries(family: str | None = None, kind: str | None = None) -> list[dict]:
    """Catalogue entries, optionally of one family and kind."""
    return [
        e
        for e in catalogue()["models"]
        if (family is None or e["family"] == family) and (kind is None or e["kind"] == kind)
    ]


def entry(name: str, family: str | None = None) -> dict:
    """The catalogue entry called ``name``.

    Raises
    ------
    KeyError
        If there is none (of that family).
    """
    for e in entries(family):
        if e["name"] == name:
            return e
    raise KeyError(name)


def cache_path(e: dict) -> Path:
    """Where entry ``e`` is cached: ``home()/<family>/<name>/<filename>``."""
    return home() / e["family"] / e["name"] / e["filename"]


def sha256_of(path: str | Path) -> str:
    """sha256 of a file; of a folder, sha256 over the sorted lines ``<sha256>  <relative path>``
    of its files (so a folder has one digest too)."""
    path = Path(path)
    if path.is_dir():
        lines = []
        for p in sorted(q for q in path.rglob("*") if q.is_file() and not q.name.startswith(".")):
            lines.append(f"{sha256_of(p)}  {p.relative_to(path).as_posix()}\n")
        return hashlib.sha256("".join(lines).encode()).hexdigest()
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _recorded(path: Path) -> Path:
    return path.parent / f"{path.name}.sha256"


def _expected_sha(e: dict, path: Path) -> tuple[str | None, str]:
    if e.get("sha256"):
        return e["sha256"], "the catalogue"
    rec = _recorded(path)
    if rec.is_file():
        return rec.read_text().split()[0], f"{rec.name}, recorded on first download"
    return None, ""


def _check_cached(e: dict, path: Path) -> None:
    expected, where = _expected_sha(e, path)
    got = sha256_of(path)
    if expected is None:
        write_text(_recorded(path), f"{got}  {path.name}\n")
    elif got != expected:
        raise ValueError(
            f"cached {path} has sha256 {got[:12]}..., expected {expected[:12]}... ({where}); "
            "it is corrupt or was replaced: delete it to download again"
        )


class _Progress:
    """tqdm on a terminal, else one line per 10 % on stderr."""

    def __init__(self, total: int | None, desc: str, enabled: bool):
        self.total, self.desc, self.done, self.enabled, self.next_pct = total, desc, 0, enabled, 10
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024)

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.enabled and self.total:
            pct = 100 * self.done // self.total
            while pct >= self.next_pct:
                print(
                    f"{self.desc}: {self.next_pct}% ({self.done / 1e6:.1f} of {self.total / 1e6:.1f} MB)",
                    file=sys.stderr,
                    flush=True,
                )
                self.next_pct += 10

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and not self.total:
            print(f"{self.desc}: {self.done / 1e6:.1f} MB", file=sys.stderr, flush=True)


def _download(e: dict, path: Path, progress: bool) -> None:
    url = e["url"]
    by_hand = f"download {url} by hand and put it at {path}"
    if e.get("manual"):
        raise DownloadError(
            f"{e['name']} has no direct download link: {by_hand} ({e.get('notes', 'see the catalogue entry')})"
        )
    if not str(url).startswith(("https://", "http://", "file://")):
        raise ValueError(f"{e['name']}: url must be http(s):// or file://, got {url!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 - http(s) and file:// only, checked below
            total = resp.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else e.get("size")
            bar = _Progress(total, f"downloading {e['filename']}", progress)
            h = hashlib.sha256()
            try:
                with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                    for block in iter(lambda: resp.read(_CHUNK), b""):
                        fh.write(block)
                        h.update(block)
                        bar.update(len(block))
                    fh.flush()
                    size = fh.tell()
                    if e.get("size") is not None and size != int(e["size"]):
                        raise ValueError(f"downloaded {url}: {size} bytes, the catalogue says {e['size']}; not kept")
                    if e.get("sha256") and h.hexdigest() != e["sha256"]:
                        raise ValueError(
                            f"downloaded {url}: sha256 {h.hexdigest()[:12]}..., the catalogue says "
                            f"{e['sha256'][:12]}...; not kept"
                        )
            finally:
                bar.close()
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        if isinstance(exc, (ValueError, DownloadError)):
            raise
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(f"cannot download {url} ({reason}); {by_hand}") from None
    write_text(_recorded(path), f"{h.hexdigest()}  {path.name}\n")


def resolve(source: str | os.PathLike, family: str, kind: str | None = None, progress: bool = True) -> Path:
    """The local path of :func:`resolve_entry` (same parameters and errors)."""
    return resolve_entry(source, family, kind, progress)[0]


def resolve_entry(
    source: str | os.PathLike, family: str, kind: str | None = None, progress: bool = True
) -> tuple[Path, dict | None]:
    """A local path for ``source`` and its catalogue entry: the path itself (and None) when it
    exists, else the cached (downloaded if needed) file of the catalogue entry of that name.

    Parameters
    ----------
    source : str or path
        A local file or folder, or a catalogue name (``neurocwm.hub.entries(family)``).
    family : str
        ``tdann``, ``toponets`` or ``cwm``: only that family's entries are looked up.
    kind : str, optional
        ``checkpoint`` or ``positions``: refuse an entry of another kind.
    progress : bool
        Show download progress.

    Returns
    -------
    path : Path
    entry : dict or None
        The catalogue entry (None for a local path).

    Raises
    ------
    FileNotFoundError
        ``source`` is neither an existing path nor a catalogue name.
    DownloadError
        The file is not cached and cannot be fetched (the message says where to put it by hand).
    ValueError
        A cached or downloaded file does not match its sha256 or size.
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
    local = Path(source).expanduser()
    if local.exists():
        return local, None
    try:
        e = entry(str(source), family)
    except KeyError:
        names = [x["name"] for x in entries(family, kind)]
        shown = ", ".join(names[:6]) + (f", ... ({len(names)} in all)" if len(names) > 6 else "")
        raise FileNotFoundError(
            f"{source}: no such file, and no {family} catalogue entry of that name (names: {shown or 'none'})"
        ) from None
    if kind is not None and e["kind"] != kind:
        raise ValueError(f"{source} is a {e['kind']} entry, expected a {kind}")
    path = cache_path(e)
    if path.exists():
        _check_cached(e, path)  # offline-first: no network when the cached copy matches
    else:
        _download(e, path, progress)
    return path, e
