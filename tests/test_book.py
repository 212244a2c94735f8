"""The book's configuration, the notebooks' shape, and the student edition."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import lvm_equations
import notebooks
import student_edition

ROOT = Path(__file__).resolve().parents[1]


CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
# The preamble of the source lecture notes: each macro must work on the website.
NOTES_MACROS = ["bmat", "E", "P", "S", "R", "norm", "pd", "pdd", "vectornorm", "abs", "mbf", "mc", "bm",
                "nicefrac", "argmin", "argmax"]


def cells(path):
    return json.loads(path.read_text())["cells"]


def source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_every_macro_of_the_notes_is_defined_for_mathjax3():
    macros = CONFIG["sphinx"]["config"]["mathjax3_config"]["tex"]["macros"]
    assert set(NOTES_MACROS) <= set(macros)
    assert macros["bm"] == ["\\boldsymbol{#1}", 1] and macros["norm"][1] == 2


def test_config_keeps_launch_buttons_and_builds_offline():
    assert CONFIG["repository"]["branch"] == "main" and CONFIG["repository"]["url"].startswith("https://")
    assert "colab" in CONFIG["launch_buttons"]["colab_url"]
    assert CONFIG["sphinx"]["recursive_update"] is True
    extensions = CONFIG["sphinx"]["extra_extensions"]
    assert {"sphinx_exercise", "sphinx_proof", "sphinx-mathjax-offline"} <= set(extensions)
    assert CONFIG["bibtex_bibfiles"] == ["book/references.bib"]
    for path in ["lvm", "tests", "benchmarks", ".pytest_cache", "_build"]:
        assert path in CONFIG["exclude_patterns"]
    requirements = (ROOT / "requirements.txt").read_text()
    assert "jupyter-book>=1.0.4,<2" in requirements
    for package in ["torch", "ipywidgets", "matplotlib", "nbval", "numpy"]:
        assert re.search(rf"^{package}\b", requirements, re.M)


def test_toc_and_chapters_agree():
    listed = {chapter["file"] for part in TOC["parts"] for chapter in part["chapters"]}
    for notebook in CHAPTERS:
        assert f"book/{notebook.stem}" in listed, f"{notebook.name} is not in _toc.yml"
    for name in listed | {TOC["root"]}:
        assert any((ROOT / f"{name}{ext}").exists() for ext in (".md", ".ipynb")), name


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_notebook_is_clean_and_starts_right(path):
    assert notebooks.problems(path) == []


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_the_course_structure(path):
    text = [source(c) for c in cells(path)]
    markdown = "\n".join(s for c, s in zip(cells(path), text) if c["cell_type"] == "markdown")
    code = [s for c, s in zip(cells(path), text) if c["cell_type"] == "code"]
    assert "Learning goals" in markdown and "## Summary" in markdown and "## Exercises" in markdown
    labels = re.findall(r"^\$\$ \(([\w-]+)\)$", markdown, re.M)
    assert len(labels) >= 3, "derivations are numbered display equations"
    for label in labels:
        assert f"{{eq}}`{label}`" in markdown, f"equation {label} is never referred to"
    assert sum("assert " in s for s in code) >= 5, "identities are checked by asserts"
    exercises = re.findall(r"\{exercise\}", markdown)
    solutions = re.findall(r"\{solution\}", markdown)
    checked = [s for s in code if "lvm.exercises.check_" in s]
    assert len(exercises) >= 3 and len(solutions) + len(checked) >= len(exercises)


def equation_labels():
    """Every numbered equation's label in the chapters, {label: chapter}."""
    labels = {}
    for path in CHAPTERS:
        for cell in cells(path):
            if cell["cell_type"] == "markdown":
                for label in re.findall(r"^\$\$ \(([\w-]+)\)$", source(cell), re.M):
                    assert label not in labels, f"equation label {label} is used twice"
                    labels[label] = path.stem
    return labels


def test_every_cited_equation_exists():
    """Code comments cite eq. (label) and docstrings eq. ``label``; the site shows each as its number."""
    labels = equation_labels()
    cited = {}
    for path in CHAPTERS:
        for cell in cells(path):
            if cell["cell_type"] == "code":
                for _, label in lvm_equations.CODE_CITATION.findall(source(cell)):
                    cited.setdefault(label, path.name)
    for module in sorted((ROOT / "lvm").rglob("*.py")):
        for label in re.findall(r"\beqs?\. ``([\w-]+)``", module.read_text()):
            cited.setdefault(label, str(module.relative_to(ROOT)))
    assert len(cited) >= 40, "the citations are found at all"
    missing = {label: where for label, where in cited.items() if label not in labels}
    assert not missing, f"cited but never numbered in a chapter: {missing}"


def test_code_citations_become_numbers_on_the_site():
    config = CONFIG["sphinx"]["local_extensions"]
    assert config.get("lvm_equations") == "_ext/"
    match = lvm_equations.CODE_CITATION.search("z = mu + sigma * eps  # eq. (vae-reparam), then")
    assert match.groups() == ("eq.", "vae-reparam")
    assert lvm_equations.CODE_CITATION.search("f(x) (not an equation)") is None


def test_student_edition_removes_solutions_and_stubs_code(tmp_path):
    out = tmp_path / "student"
    subprocess.run([sys.executable, str(ROOT / "tools" / "student_edition.py"), str(out)], check=True)
    config = yaml.safe_load((out / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == CONFIG["execute"]["execute_notebooks"]
    assert config["repository"]["branch"] == "student-edition", "Colab must not open the instructor notebooks"
    for original in CHAPTERS:
        student = out / "book" / original.name
        student_cells = cells(student)
        assert not any("{solution}" in source(c) for c in student_cells)
        exercises = re.findall(r"\{exercise\}.*\n:label: ([\w-]+)", "\n".join(map(source, cells(original))))
        kept = re.findall(r"\{exercise\}.*\n:label: ([\w-]+)", "\n".join(map(source, student_cells)))
        assert exercises and kept == exercises, "every exercise stays in the student edition"
        assert not any("solution" in c.get("metadata", {}).get("tags", []) for c in student_cells)
        stubs = [source(c) for c in student_cells if "exercise" in c.get("metadata", {}).get("tags", [])]
        originals = [source(c) for c in cells(original)
                     if "solution" in c.get("metadata", {}).get("tags", []) and "def " in source(c)]
        assert len(stubs) == len(originals)
        checks = [c for c in student_cells if "lvm.exercises.check_" in source(c)]
        assert all("raises-exception" in c["metadata"]["tags"] for c in checks), "a check of a stub must fail"
        for stub in stubs:
            namespace = {}
            exec(compile(stub, student.name, "exec"), namespace)  # a stub must at least be valid Python
            function = next(v for k, v in namespace.items() if callable(v) and not k.startswith("__"))
            with pytest.raises(NotImplementedError):
                function(*[None] * function.__code__.co_argcount)
            assert "# YOUR CODE HERE" in stub


def test_stub_keeps_signature_and_docstring():
    stub = student_edition.stub_for('def f(a, b=2):\n    """Doc."""\n    return a + b\n\nx = f(1)\n')
    assert stub.startswith('def f(a, b=2):\n    """Doc."""\n    # YOUR CODE HERE\n')
    assert student_edition.stub_for("x = 1\n") is None
    hinted = student_edition.stub_for("def g(x):\n    # the trick: use logsumexp\n    return x\n")
    assert "logsumexp" not in hinted and hinted.startswith("def g(x):\n    # YOUR CODE HERE")


def _lines_that_break_inline_maths(text):
    """Lines that start like a Markdown list item (``- ``, ``+ ``, ``* ``, ``1. ``) while a ``$...$`` opened on an
    earlier line is still open: MyST then makes the line a list item and the maths is left as raw TeX."""
    text = re.sub(r"\$\$.*?\$\$", "", text, flags=re.S)  # display maths may span lines freely
    broken, inside = [], False
    for line in text.split("\n"):
        if inside and re.match(r"\s*([-+*]|\d+\.)\s", line):
            broken.append(line)
        if len(re.findall(r"(?<!\\)\$", line)) % 2:
            inside = not inside
    return broken


def test_a_wrapped_inline_equation_never_starts_a_line_like_a_list_item():
    # The site showed "- \E[h]$ ..." as raw TeX in chapter 5 when a wrapped $...$ put a minus sign first on a line.
    assert _lines_that_break_inline_maths("write $a\n- b$ here") == ["- b$ here"]
    assert _lines_that_break_inline_maths("write $a - b$\n- a list item") == []
    pages = [*sorted((ROOT / "book").glob("*.ipynb")), *sorted((ROOT / "book").glob("*.md"))]
    for page in pages:
        texts = ([source(c) for c in cells(page) if c["cell_type"] == "markdown"] if page.suffix == ".ipynb"
                 else [page.read_text(encoding="utf-8")])
        for text in texts:
            assert _lines_that_break_inline_maths(text) == [], page.name
