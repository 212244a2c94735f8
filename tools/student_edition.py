"""Write the student edition of the book: the same chapters without the solutions.

    python tools/student_edition.py OUTPUT_DIR [--force] [--private-solutions]

- every ``{solution}`` directive is cut out of the Markdown (the exercise before it stays);
- a code cell tagged ``solution`` that defines functions keeps each function's signature and docstring, and
  its body becomes ``# YOUR CODE HERE`` / ``raise NotImplementedError``; any other ``solution`` cell is dropped;
- the landing page says that it is the student edition and links to the instructor edition, or, with
  ``--private-solutions`` (the instructor edition is not published), says that the solutions are kept by the
  instructor;
- each stub carries nbgrader's cell metadata as an answer cell, and the check cell after it as a graded, locked
  cell worth ``POINTS_PER_CODING_EXERCISE``, so that nbgrader users can grade the notebooks as they are;
- instructor-only pages (``INSTRUCTOR_ONLY_PAGES``: the marking schemes) and passages of Markdown between
  ``<!-- instructor-only -->`` and ``<!-- /instructor-only -->`` are left out;
- outputs are cleared; the edition's site executes the notebooks like the instructor's, so it has the same
  figures, and each exercise's check cell shows the checker's feedback on the stub ("... is not written
  yet"): those cells are tagged ``raises-exception``, so that their expected failure does not stop the build,
  while an error anywhere else still does.

Building from a copy, rather than with sphinx-exercise's ``hide_solutions``, also keeps the solutions out
of the notebooks that students download.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SITE_ASSETS = ["_static", "_ext"]
# Pages of the instructor edition alone (the marking schemes quote the solutions).
INSTRUCTOR_ONLY_PAGES = ["book/marking"]
# A passage of a Markdown page that the student edition leaves out (e.g. a link to an instructor-only page).
INSTRUCTOR_ONLY_PASSAGE = re.compile(r"<!-- instructor-only -->.*?<!-- /instructor-only -->\n?", re.DOTALL)
CHECK_CALL = "lvm.exercises.check_"
STUDENT_BRANCH = "student-edition"
SOLUTION_DIRECTIVE = re.compile(r"^(```|:::)\{solution\}", re.MULTILINE)
CHECKED_FUNCTION = re.compile(r"^lvm\.exercises\.check_\w+\((\w+)\)\s*$")
# A coding exercise is worth this many points, in nbgrader's metadata here and in the Otter assignments.
POINTS_PER_CODING_EXERCISE = 2


def nbgrader_metadata(kind: str, grade_id: str) -> dict:
    """nbgrader's cell metadata (schema 3): the stub is the student's answer, the check cell is graded and
    locked, so nbgrader users can grade the student notebooks as they are."""
    answer = kind == "answer"
    meta = {"grade": not answer, "solution": answer, "locked": not answer, "grade_id": grade_id,
            "schema_version": 3}
    return meta if answer else {**meta, "points": POINTS_PER_CODING_EXERCISE}


def stub_for(source: str) -> str | None:
    """The student's starting point for a solution cell, or ``None`` if the cell should just go."""
    tree = ast.parse(source)
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    if not functions:
        return None
    lines = source.splitlines()
    stubs = []
    for fn in functions:
        body_start = fn.body[0]
        keep_until = fn.body[0].end_lineno if ast.get_docstring(fn) else body_start.lineno - 1
        # Comments above the first statement belong to the solution (they are hints): drop them.
        header = [line for line in lines[fn.lineno - 1 - len(fn.decorator_list): keep_until]
                  if not line.lstrip().startswith("#")]
        indent = " " * (body_start.col_offset)
        stubs.append("\n".join(header + [f"{indent}# YOUR CODE HERE", f"{indent}raise NotImplementedError"]))
    return "\n\n\n".join(stubs) + "\n"


def wrap_answers(solution: str, begin: list[str], end: list[str]) -> str:
    """``solution`` with each function's body (after its docstring) between the lines ``begin`` and ``end``,
    indented as the body: how a grading tool's source marks what the student writes (Otter's ``# BEGIN
    SOLUTION``, nbgrader's ``### BEGIN SOLUTION``). Signatures and docstrings stay outside, as in the stub."""
    lines = solution.splitlines()
    functions = [n for n in ast.parse(solution).body if isinstance(n, ast.FunctionDef)]
    for fn in reversed(functions):  # from the bottom, so earlier line numbers stay valid
        first = fn.body[1] if ast.get_docstring(fn) and len(fn.body) > 1 else fn.body[0]
        indent = " " * first.col_offset
        start, stop = first.lineno - 1, fn.body[-1].end_lineno
        # Comments just above the first statement are hints that belong to the solution.
        while start > fn.lineno and lines[start - 1].lstrip().startswith("#"):
            start -= 1
        lines[start:stop] = [*(indent + s for s in begin), *lines[start:stop], *(indent + s for s in end)]
    return "\n".join(lines) + "\n"


def student_notebook(nb: dict, answer: Callable[[str], str | None] = stub_for) -> dict:
    """The student edition of a chapter: each solution cell becomes ``answer(its source)`` (the stub, by
    default), and the Markdown drops its solutions."""
    cells = []
    for cell in nb["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "markdown" and SOLUTION_DIRECTIVE.search(source):
            source = student_markdown(source)
            if not source.strip():
                continue
            cell = {**cell, "source": source}
        if cell["cell_type"] == "code":
            cell = {**cell, "outputs": [], "execution_count": None}
            if "solution" in cell.get("metadata", {}).get("tags", []):
                stub = answer(source)
                if stub is None:
                    continue
                # The stub is the student's to fill in: shown open, not folded like the answer it replaces.
                tags = [t for t in cell["metadata"]["tags"] if t not in ("solution", "hide-input")] + ["exercise"]
                names = "_".join(node.name for node in ast.parse(stub).body if isinstance(node, ast.FunctionDef))
                metadata = {**cell["metadata"], "tags": tags, "nbgrader": nbgrader_metadata("answer", names)}
                cell = {**cell, "source": stub, "metadata": metadata}
            elif CHECK_CALL in source:
                tags = [*cell.get("metadata", {}).get("tags", []), "raises-exception"]
                metadata = {**cell.get("metadata", {}), "tags": tags}
                checked = CHECKED_FUNCTION.match(source.strip())
                if checked:
                    metadata["nbgrader"] = nbgrader_metadata("check", f"check_{checked.group(1)}")
                cell = {**cell, "metadata": metadata}
        cells.append(cell)
    return {**nb, "cells": cells}


def student_markdown(text: str) -> str:
    """Drop ``{solution}`` directive blocks, and passages marked instructor-only, from a Markdown page."""
    text = INSTRUCTOR_ONLY_PASSAGE.sub("", text)
    out, skipping, fence = [], False, ""
    for line in text.splitlines(keepends=True):
        match = SOLUTION_DIRECTIVE.match(line)
        if not skipping and match:
            skipping, fence = True, match.group(1)
            continue
        if skipping:
            if line.strip() == fence:
                skipping = False
            continue
        out.append(line)
    return "".join(out)


def edition_lines(site_url: str, instructor_published: bool) -> list[tuple[str, str]]:
    """The landing page's two lines about the editions, as the instructor edition has them and as the student
    edition must: each edition says that it is "this site" and links to the other (if that one is public)."""
    student_url = site_url.rstrip("/") + "/student/"
    instructor = ("[published beside this site](" + site_url.rstrip("/") + "/)" if instructor_published
                  else "kept by your instructor")
    return [
        ("with every solution included and folded: this site;",
         f"with every solution included and folded: {instructor};"),
        (f"[published beside this site]({student_url}), or written by",
         "this site, written by"),
    ]


def describe_this_edition(intro: dict, site_url: str, instructor_published: bool) -> dict:
    """The landing page of the student edition calls itself the student edition and links to the instructor's
    (if public), or the build stops: a reworded intro must be matched here again."""
    cells = [{**cell, "source": "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]}
             for cell in intro["cells"]]
    markdown = [cell for cell in cells if cell["cell_type"] == "markdown"]
    for instructor_line, student_line in edition_lines(site_url, instructor_published):
        if sum(" ".join(cell["source"].split()).count(instructor_line) for cell in markdown) != 1:
            raise ValueError(f"book/intro.ipynb no longer says {instructor_line!r} once: update edition_lines()")
        for cell in markdown:
            cell["source"] = _replace_across_lines(cell["source"], instructor_line, student_line)
    return {**intro, "cells": cells}


def _replace_across_lines(text: str, old: str, new: str) -> str:
    """Replace ``old`` in ``text`` where its spaces may be line breaks (Markdown wraps lines anywhere)."""
    pattern = r"\s+".join(re.escape(word) for word in old.split())
    return re.sub(pattern, lambda _: new, text)


def fresh_output(parser: argparse.ArgumentParser, output: Path, force: bool) -> None:
    """Clear a tool's OUTPUT folder for a new run: refused (by the parser) if it exists without ``--force``."""
    if output.exists():
        if not force:
            parser.error(f"{output} exists; pass --force to replace it")
        shutil.rmtree(output)


def selected_chapters(numbers: list[str] | None) -> list[Path]:
    """The chapter notebooks whose two-digit numbers are given (``None`` or empty: all of them)."""
    chapters = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
    return [c for c in chapters if c.name[:2] in numbers] if numbers else chapters


def write_edition(output: Path, instructor_published: bool = True) -> None:
    shutil.copytree(ROOT / "book", output / "book", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for page in INSTRUCTOR_ONLY_PAGES:
        for path in (output / "book").glob(Path(page).name + ".*"):
            path.unlink()
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    for part in toc.get("parts", []):
        part["chapters"] = [c for c in part["chapters"] if c.get("file") not in INSTRUCTOR_ONLY_PAGES]
    (output / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False), encoding="utf-8")
    for folder in SITE_ASSETS:  # CSS, favicon and the Sphinx fix that _config.yml refers to
        if (ROOT / folder).exists():
            shutil.copytree(ROOT / folder, output / folder)
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    config["title"] += " (student edition)"
    # Its Colab buttons must open the student notebooks, not the instructor's: the publishing workflow pushes
    # this edition to its own branch.
    config["repository"]["branch"] = STUDENT_BRANCH
    (output / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True),
                                        encoding="utf-8")
    site_url = config["sphinx"]["config"]["ogp_site_url"]
    for path in (output / "book").rglob("*.ipynb"):
        nb = student_notebook(json.loads(path.read_text(encoding="utf-8")))
        if path.name == "intro.ipynb":
            nb = describe_this_edition(nb, site_url, instructor_published)
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for path in (output / "book").rglob("*.md"):
        path.write_text(student_markdown(path.read_text(encoding="utf-8")), encoding="utf-8")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path)
    parser.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    parser.add_argument("--private-solutions", action="store_true",
                        help="the instructor edition is not published: the landing page links to no solutions")
    args = parser.parse_args(argv)
    fresh_output(parser, args.output, args.force)
    args.output.mkdir(parents=True)
    write_edition(args.output, instructor_published=not args.private_solutions)
    print(f"student edition written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
