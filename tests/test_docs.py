"""The documentation stays true to the repository: the README's test command is what CI runs, and every
benchmark result the README, the pages and the changelog name exists (a renamed result breaks the build).

The pages themselves are built by ``.ci/run`` with ``mkdocs build --strict`` (broken links and anchors).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
INDEX_HEADING = "## Index of benchmarks/results"
# A result file named on its own: it starts with a benchmark script's name (benchmarks/<stem>.py).
STEMS = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py"))
BARE_NAME = re.compile(rf"\b((?:{'|'.join(STEMS)})[\w.-]*?\.(?:json|txt|png))\b")
UNDER_RESULTS = re.compile(r"benchmarks/results/([\w.*-]+\.(?:json|txt|png))")


def readme_test_command() -> str:
    """The README's set-up line that runs the tests (``... && .venv/bin/python -m pytest -q``)."""
    lines = [
        line
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("python3 -m venv .venv") and "pytest" in line
    ]
    assert len(lines) == 1, f"README.md should have one set-up line that runs pytest, found {lines}"
    return lines[0]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_test_command() in ci


def test_ci_builds_the_docs_strictly() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^[^#\n]*\.venv/bin/mkdocs build --strict", ci, re.MULTILINE), ".ci/run must build the docs"


def named_results(text: str) -> set[str]:
    return set(UNDER_RESULTS.findall(text)) | set(BARE_NAME.findall(text))


def test_every_result_file_the_docs_name_exists() -> None:
    missing = {
        f"{doc.relative_to(ROOT)}: {name}"
        for doc in DOCS
        for name in named_results(doc.read_text())
        if not any(RESULTS.glob(name))
    }
    assert not missing, f"named in the docs but not under benchmarks/results/: {sorted(missing)}"


def test_the_names_are_found_where_they_are_written() -> None:
    """The patterns above see both spellings, so the check above cannot pass by finding nothing."""
    assert {"multi_fidelity", "search_efficiency"} <= set(STEMS), "the benchmark scripts moved: update this test"
    text = "see `multi_fidelity_cpu_strata.json` and benchmarks/results/search_efficiency.png; not front.png"
    assert named_results(text) == {"multi_fidelity_cpu_strata.json", "search_efficiency.png"}
    assert named_results((ROOT / "docs" / "benchmarks.md").read_text())


def test_the_benchmarks_page_indexes_every_result_file() -> None:
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    assert INDEX_HEADING in page
    index = page.split(INDEX_HEADING, 1)[1]
    listed = set(re.findall(r"^\| `([^`]+)` \|", index, re.MULTILINE))
    present = {p.name for p in RESULTS.iterdir() if p.is_file() and not p.name.startswith(".")}
    assert listed == present, (
        f"docs/benchmarks.md's index: not listed {sorted(present - listed)}, no such file {sorted(listed - present)}"
    )
