"""Docs hygiene: the source cites papers, not files users do not have, and no lab-notebook run letters.

Two checks over every ``.py`` file under ``neurocwm/``, ``topography/`` and ``benchmarks/``:

* no mention of the project's private reference notes (``tdann.md``, ``cwm.md``, ``brainscore.md``)
  anywhere in the file, comments included: a docstring cites the paper (author, year, figure or
  equation) or the published code base instead;
* no lab-notebook run letters ("run Q", "runs B vs H") in any string literal, which covers
  docstrings and CLI help text.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("neurocwm", "topography", "benchmarks")

NOTE_RE = re.compile(r"\b(?:tdann|cwm|brainscore)\.md\b", re.IGNORECASE)
#: "run Q", "runs B vs H", "runs G, H, I", "(run P)": "run"/"runs" then one capital letter (maybe numbered).
RUN_RE = re.compile(r"\b[Rr]uns? [A-Z][0-9]*\b(?![\w-])")
#: A list of three or more compass points ("runs E, SE, S, SW") is not a run letter.
COMPASS_RE = re.compile(r"\b(?:N|NE|E|SE|S|SW|W|NW)(?:, (?:N|NE|E|SE|S|SW|W|NW)){2,}\b")

def note_citations(source: str) -> list[str]:
    """Lines of ``source`` (comments included) that mention a reference-note file, as ``'LINE: text'``."""
    return [f"{i}: {line.strip()}" for i, line in enumerate(source.splitlines(), 1) if NOTE_RE.search(line)]


def run_letters(source: str) -> list[str]:
    """Run-letter mentions in the string literals (docstrings, help text) of Python ``source``."""
    hits = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = COMPASS_RE.sub("", node.value)
            hits += [f"{node.lineno}: {m.group(0)!r}" for m in RUN_RE.finditer(text)]
    return hits


def _problems(path: Path) -> list[str]:
    source = path.read_text(encoding="utf-8")
    return note_citations(source) + run_letters(source)


def _files() -> list[Path]:
    return sorted(p for d in SCANNED for p in (REPO / d).rglob("*.py") if ".venv" not in p.parts)


# ------------------------------------------------------------------------------- the detectors
@pytest.mark.parametrize(
    "text",
    [
        '"""Masks (``cwm.md`` §1.5)."""',
        "# see tdann.md section 2.1",
        'x = "BrainScore.md"',
    ],
)
def test_note_detector_flags_reference_notes(text):
    assert note_citations(text)


@pytest.mark.parametrize(
    "text",
    [
        '"""Cites Venkatesh et al. 2024, ECCV; results in benchmarks/RESULTS.md and README.md."""',
        '"""The cwm.py module and the mdcwm.md5 checksum."""',
    ],
)
def test_note_detector_passes_paper_citations(text):
    assert note_citations(text) == []


@pytest.mark.parametrize(
    "text",
    [
        'p.add_argument("--x", help="the segments need it (benchmarks/RESULTS.md, run Q)")',
        '"""Rope on the CPU tiers (runs B vs H)."""',
        'f"as in run P12: {x}"',
        '"""Rotary embeddings (runs G, H, I)."""',
    ],
)
def test_run_letter_detector_flags_run_letters(text):
    assert run_letters(text)


@pytest.mark.parametrize(
    "text",
    [
        '"""The loop runs E, SE, S, SW, W, NW, N, NE and closes."""',
        '"""Runs ResNet-18 on CPU; each run A-priori seeded; a run IS a folder."""',
        "x = 1  # run Q (a comment, not help text or docs)",
        '"""It runs 3 times; the run of T-shirts."""',
    ],
)
def test_run_letter_detector_passes_ordinary_text(text):
    assert run_letters(text) == []


# ------------------------------------------------------------------------------- the repository
def test_scan_covers_the_packages():
    rel = {p.relative_to(REPO).as_posix() for p in _files()}
    assert "neurocwm/cwm/readouts.py" in rel and "topography/sheet.py" in rel and "benchmarks/swapopt.py" in rel


def test_docstrings_cite_papers_not_reference_notes():
    bad = {}
    for path in _files():
        rel = path.relative_to(REPO).as_posix()
        if problems := _problems(path):
            bad[rel] = problems
    assert not bad, "cite the paper (author, year, figure/equation) instead of:\n" + "\n".join(
        f"{f}:{p}" for f, ps in bad.items() for p in ps
    )
