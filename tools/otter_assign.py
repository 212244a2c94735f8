"""Write Otter-Grader assignments for the chapters' coding exercises, from the chapters themselves.

    python tools/otter_assign.py OUTPUT_DIR [--ref REF] [--chapters 01 06 ...] [--masters-only]

For each chapter with coding exercises, this writes an Otter Assign *master notebook* (an exercise sheet) and
runs ``otter assign`` on it:

- each coding exercise (an ``{exercise}`` whose title starts "Coding:", followed by a ``solution``-tagged cell
  that defines functions and a cell that calls ``lvm.exercises.check_*``) becomes one question worth
  ``POINTS_PER_QUESTION``, all or nothing;
- its function bodies are wrapped in ``# BEGIN SOLUTION`` / ``# END SOLUTION``; the student notebook keeps the
  signature and docstring and gets the same stub as the student edition (``# YOUR CODE HERE`` /
  ``raise NotImplementedError``);
- its public test calls the chapter's checker; its hidden test calls the same checker with other seeds, which
  draw other cases (and, where the checker varies them, other sizes);
- tests are exception-based (``tests: ok_format: false``): Otter's default OK format would turn a test
  function into a doctest that only *defines* it, and every submission would get full marks.

Nothing is copied by hand: the prompt, the solution and the checker come from ``book/*.ipynb``, so a chapter
edit reaches the assignment the next time this runs. Nothing in a graded test trains a model: the checkers run
in seconds on half a CPU.

The student notebooks run in Colab (``runs_on: colab``): their first cells install Otter and ``lvm``, and
write the public tests into ``./tests`` if the folder is missing (Otter reads them there; it downloads tests
from a URL only under JupyterLite), so that ``grader.check`` works in a notebook opened alone.

The output folder holds, per chapter, ``<chapter>/dist/student/<chapter>.ipynb`` (with its ``tests/``),
``<chapter>/dist/autograder/<chapter>-autograder_*.zip`` (upload it to Gradescope) and the master notebook.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

import student_edition

ROOT = Path(__file__).resolve().parents[1]
CHECK_CALL = re.compile(r"^(lvm\.exercises\.check_\w+)\((\w+)\)\s*$")
EXERCISE = re.compile(r"^:::\{exercise\}\s*(Coding:.*?)\n(.*?)^:::\s*$", re.MULTILINE | re.DOTALL)
POINTS_PER_QUESTION = student_edition.POINTS_PER_CODING_EXERCISE
# Seeds of the hidden tests: other cases than the public test's default seed, the same for every submission.
HIDDEN_SEEDS = (1001, 1002, 1003)
STUB = ["# YOUR CODE HERE", "raise NotImplementedError"]
# The first line of the init cell that otter assign writes, and what embed_public_tests puts in its place.
OTTER_INIT = "# Initialize Otter"
INIT_CELL = """# Initialize Otter. Its checks read the public tests from ./tests. Where that folder is missing (in
# Colab, where this notebook arrives alone), they are written here from this cell; an existing folder
# (the assignment's zip unpacked, or the grader's) is left as it is.
import pathlib

PUBLIC_TESTS = {{
{tests}}}
if not pathlib.Path("tests").is_dir():
    pathlib.Path("tests").mkdir()
    for name, source in PUBLIC_TESTS.items():
        (pathlib.Path("tests") / name).write_text(source, encoding="utf-8")

import otter

grader = otter.Notebook()
"""


@dataclass
class CodingExercise:
    name: str  # the function the student writes, also the question's name
    title: str
    prompt: str  # Markdown
    solution: str  # the solution cell's source
    checker: str  # e.g. lvm.exercises.check_mixture_log_density


def config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))


def source_of(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def coding_exercises(nb: dict) -> list[CodingExercise]:
    """The chapter's coding exercises, in order: prompt, solution and check, each found where the book has it."""
    cells = nb["cells"]
    found = []
    for i, cell in enumerate(cells):
        if "solution" not in cell.get("metadata", {}).get("tags", []) or cell["cell_type"] != "code":
            continue
        solution = source_of(cell)
        functions = [n for n in ast.parse(solution).body if isinstance(n, ast.FunctionDef)]
        check = CHECK_CALL.match(source_of(cells[i + 1]).strip()) if i + 1 < len(cells) else None
        if not functions or check is None:
            continue
        prompts = EXERCISE.findall(source_of(cells[i - 1]))
        if not prompts:
            raise ValueError(f"the cell before the solution of {check.group(2)} holds no 'Coding:' exercise")
        title, body = prompts[-1]
        found.append(CodingExercise(check.group(2), title.strip(), body, solution, check.group(1)))
    return found


def equation_numbers(nb: dict, chapter: int) -> dict[str, str]:
    """Labelled display equations are numbered in order of appearance, (chapter.k), as the site numbers them."""
    labels = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            labels += re.findall(r"^\$\$\s*\((\S+)\)\s*$", source_of(cell), re.MULTILINE)
    return {label: f"({chapter}.{k})" for k, label in enumerate(labels, start=1)}


def plain_markdown(text: str, page_url: str, numbers: dict[str, str]) -> str:
    """MyST roles and directive options as plain Markdown, which Colab and Jupyter render."""
    text = re.sub(r"^:label:.*\n", "", text, flags=re.MULTILINE).strip()
    text = re.sub(r"\{eq\}`([^`]+)`",
                  lambda m: f"[{numbers.get(m.group(1), 'the equation')}]({page_url}#equation-{m.group(1)})", text)
    text = re.sub(r"\{(?:ref|numref)\}`(?:([^`<]*?)\s*<)?([^`>]+)>?`",
                  lambda m: f"[{m.group(1) or 'the chapter'}]({page_url}#{m.group(2)})", text)
    return re.sub(r"\{cite(?::\w+)?\}`([^`]+)`", r"(\1)", text)


def solution_with_markers(solution: str) -> str:
    """Wrap each function's body (after its docstring) in Otter's solution markers, with the stub as prompt."""
    prompt = ['""" # BEGIN PROMPT', *STUB, '""" # END PROMPT']
    return student_edition.wrap_answers(solution, ["# BEGIN SOLUTION NO PROMPT"], ["# END SOLUTION", *prompt])


def imports_for(nb: dict, solutions: list[str]) -> list[str]:
    """The chapter's own import lines that bind a name the solutions use."""
    used = {n.id for source in solutions for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}
    keep = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code" or "solution" in cell.get("metadata", {}).get("tags", []):
            continue
        for node in ast.parse(source_of(cell)).body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                bound = {(a.asname or a.name).split(".")[0] for a in node.names}
                line = ast.unparse(node)
                if bound & used and line not in keep:
                    keep.append(line)
    return keep


def code_cell(source: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}


def markdown_cell(source: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": source}


def raw_cell(source: str) -> dict:
    return {"cell_type": "raw", "metadata": {}, "source": source}


def test_cell(ex: CodingExercise, hidden: bool) -> dict:
    argument = ex.name
    if hidden:
        seeds = ", ".join(map(str, HIDDEN_SEEDS))
        return code_cell(
            '""" # BEGIN TEST CONFIG\nhidden: true\n""" # END TEST CONFIG\n'
            f"def test_{ex.name}_other_cases({argument}):\n"
            "    import lvm\n"
            f"    for seed in ({seeds}):\n"
            f"        {ex.checker}({argument}, seed=seed)\n")
    return code_cell(f"def test_{ex.name}({argument}):\n    import lvm\n    {ex.checker}({argument})\n")


def master_notebook(path: Path, ref: str) -> dict | None:
    """The Otter Assign master notebook of one chapter, or ``None`` if it has no coding exercise."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    exercises = coding_exercises(nb)
    if not exercises:
        return None
    cfg = config()
    chapter = int(path.name[:2])
    site = cfg["sphinx"]["config"]["ogp_site_url"].rstrip("/")
    page_url = f"{site}/book/{path.stem}.html"
    numbers = equation_numbers(nb, chapter)
    title = re.search(r"^# (.+)$", source_of(nb["cells"][1]), re.MULTILINE).group(1)
    repo = cfg["repository"]["url"].rstrip("/")
    assignment = {
        "name": path.stem,
        "requirements": "requirements.txt",
        "overwrite_requirements": False,
        "runs_on": "colab",
        "export_cell": {"pdf": False, "instructions": "Upload the zip file to Gradescope."},
        "tests": {"files": True, "ok_format": False},
        "generate": {"pdf": False, "show_stdout": True, "show_hidden": True},
        "init_cell": True,
        "check_all_cell": True,
    }
    # The chapter's macro cell (\mc, \E, ...): Jupyter and Colab typeset the prompts with the book's macros.
    macros = [markdown_cell(source_of(c)) for c in nb["cells"] if c.get("metadata", {}).get("lvm") == "lvm-macros"]
    cells = [
        raw_cell("# ASSIGNMENT CONFIG\n" + yaml.safe_dump(assignment, sort_keys=False)),
        *macros,
        markdown_cell(
            f"# Chapter {chapter} exercises: {title}\n\n"
            f"The coding exercises of [chapter {chapter}]({page_url}), as an assignment that Otter-Grader marks. "
            f"Each is worth {POINTS_PER_QUESTION} points, all or nothing: the check below it runs your function "
            "on the cases the chapter's check uses, and the grader runs it on more cases that you do not see. "
            "Fill in each function where it says `# YOUR CODE HERE`, run every cell from the top, and submit "
            "the zip file that the last cell writes."),
        code_cell(
            "# Set-up: on Colab, install the course package `lvm` from its repository.\n"
            "import subprocess\nimport sys\n\n"
            'if "google.colab" in sys.modules:\n'
            f'    repo = "git+{repo}@{ref}"\n'
            '    pip = [sys.executable, "-m", "pip", "install", "-q"]\n'
            '    subprocess.run([*pip, f"lvm-course @ {repo}"], check=True)\n\n'
            "import lvm\n" + "".join(f"{line}\n" for line in imports_for(nb, [e.solution for e in exercises]))),
    ]
    for ex in exercises:
        cells += [
            raw_cell(f"# BEGIN QUESTION\nname: {ex.name}\npoints: {POINTS_PER_QUESTION}\nall_or_nothing: true"),
            markdown_cell(f"## {ex.title}\n\n{plain_markdown(ex.prompt, page_url, numbers)}"),
            raw_cell("# BEGIN SOLUTION"),
            code_cell(solution_with_markers(ex.solution)),
            raw_cell("# END SOLUTION"),
            raw_cell("# BEGIN TESTS"),
            test_cell(ex, hidden=False),
            test_cell(ex, hidden=True),
            raw_cell("# END TESTS"),
            raw_cell("# END QUESTION"),
        ]
    for k, cell in enumerate(cells):
        cell["id"] = f"{path.stem[:2]}-{k:02d}"
    return {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                         "name": "python3"},
                                         "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def grader_requirements(ref: str) -> str:
    """What Gradescope's image installs: torch's CPU wheel (no GPU there, and the CUDA build is gigabytes) and
    lvm at the same ref as the student notebooks."""
    repo = config()["repository"]["url"].rstrip("/")
    return ("--extra-index-url https://download.pytorch.org/whl/cpu\n"
            "torch>=2.3\n"
            f"lvm-course @ git+{repo}@{ref}\n")


def write_assignment(chapter: Path, output: Path, ref: str, run_otter: bool = True) -> Path | None:
    master = master_notebook(chapter, ref)
    if master is None:
        return None
    folder = output / chapter.stem
    folder.mkdir(parents=True)
    (folder / "requirements.txt").write_text(grader_requirements(ref), encoding="utf-8")
    master_path = folder / f"{chapter.stem}.ipynb"
    master_path.write_text(json.dumps(master, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if run_otter:
        # otter assign also runs every test against the solutions, so a broken master fails here.
        subprocess.run(["otter", "assign", "-v", master_path.name, "dist"], cwd=folder, check=True)
        embed_public_tests(folder / "dist" / "student" / f"{chapter.stem}.ipynb")
    return folder


def embed_public_tests(student_notebook: Path) -> None:
    """Put the public tests into the student notebook's Otter init cell.

    Otter 7 reads a check's tests from ``./tests`` (it downloads them from a URL only under JupyterLite, and in
    Colab ``otter.Notebook()`` refuses to start without the folder), so a student notebook opened alone, as
    a Colab link opens it, could run no check. The init cell now writes the folder when it is missing.
    """
    nb = json.loads(student_notebook.read_text(encoding="utf-8"))
    tests = sorted((student_notebook.parent / "tests").glob("*.py"))
    if not tests:
        raise ValueError(f"no public tests beside {student_notebook}")
    entries = ""
    for test in tests:
        lines = "".join(f"        {line!r}\n" for line in test.read_text(encoding="utf-8").splitlines(keepends=True))
        entries += f"    {test.name!r}: (\n{lines}    ),\n"
    inits = [c for c in nb["cells"] if c["cell_type"] == "code" and source_of(c).startswith(OTTER_INIT)]
    if len(inits) != 1:
        raise ValueError(f"expected one Otter init cell in {student_notebook}, found {len(inits)}")
    inits[0]["source"] = INIT_CELL.format(tests=entries)
    student_notebook.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def checkout_mismatch(ref: str) -> str | None:
    """A warning when this checkout is not at ``ref``: the prompts, solutions and tests come from the
    checkout, while the students and the grader install ``lvm`` at ``ref``, so the two must agree."""
    def commit(name: str) -> str | None:
        found = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}"], cwd=ROOT,
                               capture_output=True, text=True)
        return found.stdout.strip() or None

    here, there = commit("HEAD"), commit(ref)
    if here is None or here == there:
        return None
    if there is None:
        return (f"warning: cannot check that this checkout is at {ref} (no such ref here): the assignments are "
                f"written from the checkout, and lvm is installed at {ref}")
    return (f"warning: this checkout ({here[:8]}) is not at {ref} ({there[:8]}): the assignments are written "
            f"from the checkout, and lvm is installed at {ref}; run `git checkout {ref}` first")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path)
    parser.add_argument("--ref", default=config()["repository"].get("branch", "main"),
                        help="the git ref (branch or tag) of lvm that students and the grader install")
    parser.add_argument("--chapters", nargs="*", help="chapter numbers, e.g. 01 06 (default: all)")
    parser.add_argument("--masters-only", action="store_true", help="write the master notebooks only")
    parser.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    args = parser.parse_args(argv)
    student_edition.fresh_output(parser, args.output, args.force)
    warning = checkout_mismatch(args.ref)
    if warning:
        print(warning, file=sys.stderr)
    chapters = student_edition.selected_chapters(args.chapters)
    for chapter in chapters:
        folder = write_assignment(chapter, args.output.resolve(), args.ref, run_otter=not args.masters_only)
        if folder is not None:
            print(f"{chapter.stem}: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
