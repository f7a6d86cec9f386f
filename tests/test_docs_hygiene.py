"""Docs hygiene: the source cites papers, not files users do not have, and no lab-notebook run letters.

Two checks over every ``.py`` file under ``neurocwm/``, ``topography/`` and ``benchmarks/``:

* no mention of the project's private reference notes (``tdann.md``, ``cwm.md``, ``brainscore.md``)
  anywhere in the file, comments included: a docstring cites the paper (author, year, figure or
  equation) or the published code base instead;
* no lab-notebook run letters ("run Q", "runs B vs H") in any string literal, which covers
  docstrings and CLI help text.

The same two checks over the written docs (the README, the manual in ``docs/`` and
``benchmarks/RESULTS.md``) and over the help text of the real command-line parser; and
``benchmarks/RESULTS.md`` keeps one section with a table per benchmark script.
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


#: Folders under ``docs/`` that Sphinx writes (the API pages autosummary generates, the HTML).
DOCS_BUILT = ("generated", "_build")


def _doc_files() -> list[Path]:
    """The README, the manual pages and the benchmark results: every hand-written doc a user reads."""
    pages = [
        p
        for p in (REPO / "docs").rglob("*")
        if p.suffix in (".md", ".rst") and not set(p.relative_to(REPO / "docs").parts) & set(DOCS_BUILT)
    ]
    return [REPO / "README.md", REPO / "benchmarks" / "RESULTS.md", *sorted(pages)]


def text_run_letters(text: str) -> list[str]:
    """Run-letter mentions in prose (Markdown, reStructuredText, help text), as ``'LINE: match'``."""
    return [
        f"{i}: {m.group(0)!r}"
        for i, line in enumerate(text.splitlines(), 1)
        for m in RUN_RE.finditer(COMPASS_RE.sub("", line))
    ]


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


# ------------------------------------------------------------------------------- the written docs
@pytest.mark.parametrize(
    "text",
    [
        "| `--pos-embed` | `rope` | made small CPU runs learn (RESULTS.md, runs B vs H) |",
        "fine-tuning is what made the Spelke segments work (runs P, Q)",
        "e.g. 3.36 px after 4,000 steps,\nRESULTS.md run D), and",
    ],
)
def test_text_detector_flags_run_letters(text):
    assert text_run_letters(text)


@pytest.mark.parametrize(
    "text",
    [
        "A run folder holds `config.json`; runs E, SE, S, SW, W are compass points.",
        "| run | steps |\n|---|---|\n| rotary base, 12,000 steps | 12,000 |",
        "`neurocwm fit --out RUN --resume`: resumed runs stay bit-identical",
    ],
)
def test_text_detector_passes_ordinary_prose(text):
    assert text_run_letters(text) == []


def test_doc_scan_covers_the_manual():
    rel = {p.relative_to(REPO).as_posix() for p in _doc_files()}
    assert {"README.md", "benchmarks/RESULTS.md", "docs/index.md", "docs/experiments.md", "docs/api.rst"} <= rel
    assert not any(part in DOCS_BUILT for r in rel for part in r.split("/"))


def test_docs_have_no_run_letters_or_reference_notes():
    bad = {}
    for path in _doc_files():
        text = path.read_text(encoding="utf-8")
        if problems := note_citations(text) + text_run_letters(text):
            bad[path.relative_to(REPO).as_posix()] = problems
    assert not bad, "say what the setting does and point to the measured table instead of:\n" + "\n".join(
        f"{f}:{p}" for f, ps in bad.items() for p in ps
    )


def _parser_texts(parser, path="neurocwm"):
    """Every description, epilog and argument help of ``parser`` and its sub-commands, as (where, text)."""
    import argparse

    yield path, parser.description or ""
    yield path, parser.epilog or ""
    for action in parser._actions:
        yield f"{path} {'/'.join(action.option_strings) or action.dest}", action.help or ""
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                yield f"{path} {choice.dest}", choice.help or ""
            for name, sub in action.choices.items():
                yield from _parser_texts(sub, f"{path} {name}")


def test_cli_help_has_no_run_letters():
    """The help the user sees, from the real parser (also text assembled at run time)."""
    from neurocwm.cli import build_parser

    texts = list(_parser_texts(build_parser()))
    assert len(texts) > 100 and any(where.startswith("neurocwm cwm eval") for where, _ in texts)
    bad = [f"{where}: {hit}" for where, text in texts for hit in text_run_letters(text) + note_citations(text)]
    assert not bad, "help text with run letters or reference notes:\n" + "\n".join(bad)


#: Scripts without a table of their own in RESULTS.md, and why.
NO_TABLE = {
    "analyses.py": "runs analyses_v1.py and analyses_vtc.py, whose tables are recorded",
}


def _results_sections() -> dict[str, str]:
    text = (REPO / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
    parts = re.split(r"^## (.*)$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_results_keep_a_table_per_benchmark_script():
    sections = _results_sections()
    scripts = sorted(p.name for p in (REPO / "benchmarks").glob("*.py"))
    assert "train_step.py" in scripts and len(scripts) >= 10
    missing = []
    for name in scripts:
        if name in NO_TABLE:
            continue
        own = [body for heading, body in sections.items() if f"benchmarks/{name}" in heading]
        if not any(re.search(r"^\|[- |:]*---[- |:]*\|$", body, flags=re.M) for body in own):
            missing.append(name)
    assert not missing, f"benchmarks/RESULTS.md has no section with a table for: {missing}"


def test_results_sections_name_machine_and_date():
    """One table per benchmark with the machine and the date it was measured."""
    undated = [
        h
        for h, body in _results_sections().items()
        if not re.search(r"\b20\d\d-\d\d-\d\d\b", body) or "machine" not in body.lower()
    ]
    assert not undated, f"sections without a date or a machine: {undated}"
