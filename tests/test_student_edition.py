"""The student edition: no solution reaches it, and every stub's check answers with a sentence.

The first tests write the edition into a temporary folder. ``test_built_student_site_has_no_solution`` reads
the *built* student site (``_build/student/_build/html``, or ``LVM_STUDENT_SITE``); it is selected with
``-m student_site`` after CI has built that site, and fails (does not skip) when the site is missing.
"""

from __future__ import annotations

import ast
import html
import json
import os
import re
from pathlib import Path

import pytest
import yaml

import student_edition
from lvm.exercises import ExerciseFeedback

ROOT = Path(__file__).resolve().parents[1]


STUDENT_SITE = Path(os.environ.get("LVM_STUDENT_SITE", ROOT / "_build" / "student" / "_build" / "html"))
PAGES = sorted((ROOT / "book").glob("*.ipynb")) + sorted((ROOT / "book").glob("*.md"))


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _solution_blocks(markdown: str) -> list[str]:
    """The bodies of the ``{solution}`` directives of a Markdown text."""
    kept = student_edition.student_markdown(markdown)
    removed = []
    for block in re.split(r"\n(?=(?:```|:::)\{)", markdown):
        if student_edition.SOLUTION_DIRECTIVE.match(block.lstrip()) and block not in kept:
            removed.append(block)
    return removed


def solution_fragments() -> tuple[set[str], set[str]]:
    """Pieces of the instructor's solutions that must not reach students: (prose runs, code lines).

    Prose: runs of eight or more plain words from ``{solution}`` bodies (maths and markup stripped, so the
    run reads the same in a notebook and on a web page). Code: the lines of ``solution`` cells that the
    student's stub does not keep. A fragment that also occurs outside the solutions is not evidence of a
    leak and is left out.
    """
    prose, code, public = set(), set(), []
    for path in PAGES:
        if path.suffix == ".md":
            units = [("markdown", path.read_text(encoding="utf-8"), [])]
        else:
            units = [(c["cell_type"], _source(c), c.get("metadata", {}).get("tags", [])) for c in _cells(path)]
        for kind, text, tags in units:
            if kind == "code" and "solution" in tags:
                stub = student_edition.stub_for(text) or ""
                kept = {_squash(line) for line in stub.splitlines()}
                code |= {_squash(line) for line in text.splitlines()
                         if len(line.strip()) >= 12 and _squash(line) not in kept and not line.lstrip().startswith("#")}
                continue
            blocks = _solution_blocks(text) if kind == "markdown" else []
            public.append(_squash(student_edition.student_markdown(text)))
            for block in blocks:
                plain = re.sub(r"\$\$.*?\$\$|\$[^$]*\$|\{[a-z]+\}`[^`]*`|`[^`]*`|[*_]", " ", block, flags=re.S)
                for sentence in re.split(r"[.:;?!()\n]", plain):
                    words = sentence.split()
                    if len(words) >= 8 and all(re.fullmatch(r"[A-Za-z'-]+,?", w) for w in words):
                        prose.add(" ".join(words))
    everywhere_else = " ".join(public)
    return ({p for p in prose if p not in everywhere_else}, {c for c in code if c not in everywhere_else})


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    out = tmp_path_factory.mktemp("student") / "edition"
    out.mkdir()
    student_edition.write_edition(out)
    return out


def test_there_are_solutions_to_hide():
    prose, code = solution_fragments()
    assert len(prose) >= 20 and len(code) >= 20, "the leak check would have nothing to look for"


def test_no_solution_text_or_code_in_the_student_notebooks(edition):
    prose, code = solution_fragments()
    for path in sorted((edition / "book").rglob("*")):
        if path.suffix not in (".ipynb", ".md"):
            continue
        if path.suffix == ".ipynb":
            text = " ".join(_squash(_source(c)) for c in _cells(path))
        else:
            text = _squash(path.read_text(encoding="utf-8"))
        leaked = [f for f in prose | code if f in text]
        assert leaked == [], f"{path.name} gives away solutions: {leaked[:5]}"


def test_every_stub_keeps_a_docstring_that_says_what_to_return():
    # book/instructors.md promises each stub its function's signature and docstring: the student's spec.
    found = 0
    for notebook in sorted((ROOT / "book").glob("*.ipynb")):
        for cell in _cells(notebook):
            if cell["cell_type"] == "code" and "solution" in cell.get("metadata", {}).get("tags", []):
                stub = student_edition.stub_for(_source(cell))
                if stub is None:
                    continue
                for function in ast.parse(stub).body:
                    assert ast.get_docstring(function), f"{notebook.name}: the stub of {function.name} has no docstring"
                    found += 1
    assert found >= 11


def _landing_text(book: Path) -> str:
    intro = json.loads((book / "intro.ipynb").read_text(encoding="utf-8"))
    return " ".join(" ".join(_source(c).split()) for c in intro["cells"] if c["cell_type"] == "markdown")


def test_each_edition_says_which_it_is_and_links_to_the_other(edition, tmp_path):
    site = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["sphinx"]["config"]["ogp_site_url"]
    instructor = _landing_text(ROOT / "book")
    assert "with every solution included and folded: this site;" in instructor
    assert f"[published beside this site]({site.rstrip('/')}/student/)" in instructor
    student = _landing_text(edition / "book")
    assert "this site;" not in student and f"{site.rstrip('/')}/student/" not in student
    assert f"with every solution included and folded: [published beside this site]({site.rstrip('/')}/);" in student
    assert "then grades: this site, written by" in student
    private = tmp_path / "private"
    private.mkdir()
    student_edition.write_edition(private, instructor_published=False)
    assert "with every solution included and folded: kept by your instructor;" in _landing_text(private / "book")
    assert site.rstrip("/") + "/)" not in _landing_text(private / "book")


def _stub_and_check_cells(notebook: Path) -> list[tuple[str, str]]:
    cells = _cells(notebook)
    pairs = []
    for i, cell in enumerate(cells):
        if "exercise" in cell.get("metadata", {}).get("tags", []):
            check = next(_source(c) for c in cells[i + 1:]
                         if c["cell_type"] == "code" and "lvm.exercises.check_" in _source(c))
            pairs.append((_source(cell), check))
    return pairs


def test_every_stub_check_answers_with_the_checkers_sentence(edition, capsys):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_cell("import lvm, torch\nfrom torch.distributions import Normal")
    checked = 0
    for notebook in sorted((edition / "book").glob("*.ipynb")):
        for stub, check in _stub_and_check_cells(notebook):
            capsys.readouterr()
            assert shell.run_cell(stub).success, f"{notebook.name}: the stub does not even define its function"
            result = shell.run_cell(check)
            shown = capsys.readouterr()
            shown = re.sub(r"\x1b\[[0-9;]*m", "", shown.out + shown.err)
            assert isinstance(result.error_in_exec, ExerciseFeedback), f"{notebook.name}: {check!r} gave {shown}"
            assert "is not written yet" in shown, f"{notebook.name}: {shown}"
            assert "Traceback" not in shown and "File " not in shown, f"{notebook.name} shows a traceback: {shown}"
            checked += 1
    assert checked >= 9


@pytest.mark.student_site
def test_built_student_site_has_no_solution():
    if not (STUDENT_SITE / "index.html").exists():
        pytest.fail(f"no built student site at {STUDENT_SITE}: CI builds it before running -m student_site")
    prose, code = solution_fragments()
    pages = sorted(STUDENT_SITE.rglob("*.html"))
    assert len(pages) >= 10
    # Counted in the text a reader sees: the site highlights the note as a traceback, word by word in spans.
    shown = [html.unescape(re.sub(r"<[^>]+>", "", p.read_text(encoding="utf-8"))) for p in pages]
    feedback = sum(text.count("is not written yet") for text in shown)
    assert feedback >= 9, "each coding exercise's check shows its feedback on the stub"
    for page in pages:
        raw = page.read_text(encoding="utf-8")
        assert 'class="solution' not in raw, f"{page.name} holds a solution block"
        # Code is split into highlighting spans (join them); prose into blocks (keep the spaces between).
        code_text = _squash(html.unescape(re.sub(r"<[^>]+>", "", raw)))
        prose_text = re.sub(r" ([,.;:)])", r"\1", _squash(html.unescape(re.sub(r"<[^>]+>", " ", raw))))
        leaked = [f for f in prose if f in prose_text] + [f for f in code if f in code_text]
        assert leaked == [], f"{page.name} gives away solutions: {leaked[:5]}"
