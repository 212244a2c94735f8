"""Write an nbgrader course folder: one assignment per chapter with coding exercises, from the chapters.

    python tools/nbgrader_course.py COURSE_DIR [--chapters 01 06 ...] [--force]

nbgrader's ``generate_assignment`` reads an instructor's *source* notebook, in which each answer is marked
``### BEGIN SOLUTION`` / ``### END SOLUTION``, and writes the student's copy with those regions replaced by a
stub. Running it on the student edition would not do: an answer cell without markers is replaced whole, and
the student would lose the function's signature and docstring. So this writes the source notebooks:

- ``COURSE_DIR/source/<chapter>/<chapter>.ipynb``: the student edition of the chapter (same cells, same
  nbgrader metadata: each answer cell a ``solution``, each check cell after it ``grade``, ``locked``, worth
  ``POINTS_PER_CODING_EXERCISE``), with the reference solution back in each answer cell, its function bodies
  between nbgrader's markers;
- ``COURSE_DIR/nbgrader_config.py``: the course's settings, with the student edition's stub
  (``# YOUR CODE HERE`` / ``raise NotImplementedError``), so that ``nbgrader generate_assignment`` writes the
  student edition's answer cells exactly.

Then, in COURSE_DIR: ``nbgrader generate_assignment <chapter>``, ``nbgrader release_assignment <chapter>``,
and after the deadline ``nbgrader collect <chapter>`` and ``nbgrader autograde <chapter>``. Autograding runs
the whole chapter (it trains the chapter's small models), so it takes the chapter's run time per submission.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import student_edition

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CONFIG = '''"""nbgrader settings of this course, written by tools/nbgrader_course.py."""

import os

c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.course_id = {course_id!r}
# Grade on the quick profile, GPU or not: the checks need no trained model, and the full profile runs a
# chapter for up to half an hour (its kernel inherits this environment). Set LVM_PROFILE to override.
os.environ.setdefault("LVM_PROFILE", "quick")
# The student edition's stub, so that generate_assignment writes its answer cells exactly.
c.ClearSolutions.code_stub = {{"python": {stub!r}}}
# Autograding executes the whole chapter: give its slowest cell time (seconds).
c.Execute.timeout = {timeout}
'''
STUB = "# YOUR CODE HERE\nraise NotImplementedError"
TIMEOUT_S = 900  # a chapter's longest cell in the quick profile on two CPU cores is well under this


def solution_for_nbgrader(source: str) -> str | None:
    """An answer cell of the source notebook: the reference solution, each body between nbgrader's markers
    (``None`` for a solution cell that defines no function, which the student edition drops)."""
    if student_edition.stub_for(source) is None:
        return None
    return student_edition.wrap_answers(source, [BEGIN], [END])


def has_coding_exercise(nb: dict) -> bool:
    return any("nbgrader" in c.get("metadata", {}) for c in nb["cells"])


def write_course(output: Path, chapters: list[Path], course_id: str = "lvm-course") -> list[str]:
    """Write the course folder; returns the names of the assignments written."""
    written = []
    for chapter in chapters:
        nb = student_edition.student_notebook(json.loads(chapter.read_text(encoding="utf-8")),
                                              answer=solution_for_nbgrader)
        if not has_coding_exercise(nb):
            continue
        folder = output / "source" / chapter.stem
        folder.mkdir(parents=True)
        (folder / chapter.name).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(chapter.stem)
    (output / "nbgrader_config.py").write_text(
        CONFIG.format(course_id=course_id, stub=STUB, timeout=TIMEOUT_S), encoding="utf-8")
    return written


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path)
    parser.add_argument("--chapters", nargs="*", help="chapter numbers, e.g. 01 06 (default: all)")
    parser.add_argument("--course-id", default="lvm-course", help="nbgrader's course id (default: lvm-course)")
    parser.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    args = parser.parse_args(argv)
    student_edition.fresh_output(parser, args.output, args.force)
    chapters = student_edition.selected_chapters(args.chapters)
    args.output.mkdir(parents=True)
    for name in write_course(args.output, chapters, args.course_id):
        print(f"{name}: {args.output / 'source' / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
