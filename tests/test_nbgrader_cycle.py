"""A whole nbgrader cycle, run for real: generate, release, fetch, submit, collect, autograde.

``tools/nbgrader_course.py`` writes the course's source notebooks. For every chapter, ``nbgrader
generate_assignment`` must write exactly the student edition's answer cells (signature, docstring, stub). For
chapter 1 (the quickest to run: autograding executes the whole chapter), a solution goes through nbgrader's
exchange as a student would send it, and two more submissions are put where ``nbgrader collect`` puts them: the
untouched release, and one plausible wrong answer (``grading_mistakes.py``). ``nbgrader autograde`` then runs
them all, and the gradebook must hold full marks, zero, and full marks less exactly the wrong question's points.

nbgrader pulls in JupyterLab, so it is in the ``[instructor]`` extra and these tests run with ``-m instructor``.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import nbgrader_course
import student_edition

from grading_mistakes import MISTAKES

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "01_latent_variable_models"
COURSE = "lvm-course"

pytestmark = pytest.mark.instructor


def _nbgrader(*args: str, cwd: Path, exchange: Path) -> None:
    # nbgrader runs from the environment that runs the tests; it calls that environment's `alembic` by name.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    # LVM_PROFILE is left unset: the course's nbgrader_config.py picks the quick profile itself.
    env = {**{k: v for k, v in os.environ.items() if k != "LVM_PROFILE"}, "PATH": path, "MPLBACKEND": "Agg"}
    command = [sys.executable, "-m", "nbgrader", *args, f"--Exchange.root={exchange}"]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"


def _answers(path: Path) -> dict[str, str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"]) for c in cells
            if c["metadata"].get("nbgrader", {}).get("solution")}


def _with_answers(path: Path, answers: dict[str, str]) -> dict:
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if cell["metadata"].get("nbgrader", {}).get("solution") and grade_id in answers:
            cell["source"] = answers[grade_id]
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A course folder with every chapter's source, and every assignment generated."""
    root = tmp_path_factory.mktemp("nbgrader")
    course, exchange = root / "course", root / "exchange"
    course.mkdir()
    exchange.mkdir()
    chapters = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
    names = nbgrader_course.write_course(course, chapters, COURSE)
    for name in names:
        _nbgrader("generate_assignment", name, cwd=course, exchange=exchange)
    return course


def test_every_chapter_with_coding_exercises_is_an_assignment(course):
    sources = sorted(p.name for p in (course / "source").iterdir())
    expected = [p.stem for p in sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
                if any("nbgrader" in c["metadata"] for c in student_edition.student_notebook(
                    json.loads(p.read_text(encoding="utf-8")))["cells"])]
    assert sources == expected and len(sources) >= 8


def test_generated_answer_cells_are_the_student_editions(course, tmp_path):
    student_edition.write_edition(tmp_path)
    compared = 0
    for released in sorted((course / "release").glob("*/*.ipynb")):
        ours = _answers(tmp_path / "book" / released.name)
        theirs = _answers(released)
        assert theirs == ours, released.name
        assert all("raise NotImplementedError" in source for source in theirs.values())
        compared += len(theirs)
    assert compared >= 11


def test_the_course_grades_on_the_quick_profile_unless_told_otherwise(course, monkeypatch):
    # A grading machine with a GPU would default to the full profile: half an hour a chapter per submission.
    from traitlets.config import Config

    monkeypatch.delenv("LVM_PROFILE", raising=False)
    config = Config()
    exec((course / "nbgrader_config.py").read_text(encoding="utf-8"), {"get_config": lambda: config})
    assert os.environ["LVM_PROFILE"] == "quick"
    assert config.ClearSolutions.code_stub == {"python": nbgrader_course.STUB}
    monkeypatch.setenv("LVM_PROFILE", "full")
    exec((course / "nbgrader_config.py").read_text(encoding="utf-8"), {"get_config": lambda: config})
    assert os.environ["LVM_PROFILE"] == "full"  # an explicit choice stands


def test_source_notebooks_hold_the_solutions(course):
    # The source keeps the reference answer between nbgrader's markers: nothing a student should see is lost
    # from it, and generate_assignment has something to strip.
    for source in sorted((course / "source").glob("*/*.ipynb")):
        for grade_id, answer in _answers(source).items():
            assert answer.count(nbgrader_course.BEGIN) >= 1, (source.name, grade_id)
            assert "raise NotImplementedError" not in answer, (source.name, grade_id)


def test_a_whole_cycle_grades_right_untouched_and_wrong_submissions(course):
    from nbgrader.api import Gradebook

    exchange = course.parent / "exchange"
    released = course / "release" / CHAPTER / f"{CHAPTER}.ipynb"
    solutions = _answers(course / "source" / CHAPTER / f"{CHAPTER}.ipynb")

    # A student fetches the assignment, answers it with the reference solutions, and submits it.
    _nbgrader("release_assignment", CHAPTER, cwd=course, exchange=exchange)
    home = course.parent / "student"
    home.mkdir()
    _nbgrader("fetch_assignment", CHAPTER, f"--course={COURSE}", cwd=home, exchange=exchange)
    fetched = home / CHAPTER / f"{CHAPTER}.ipynb"
    fetched.write_text(json.dumps(_with_answers(fetched, solutions), indent=1), encoding="utf-8")
    _nbgrader("submit", CHAPTER, f"--course={COURSE}", cwd=home, exchange=exchange)
    _nbgrader("collect", CHAPTER, cwd=course, exchange=exchange)
    student = getpass.getuser()
    assert (course / "submitted" / student / CHAPTER / f"{CHAPTER}.ipynb").is_file()

    # Two more, where collect puts them: the release untouched, and one wrong answer.
    question = "mixture_log_density"
    right, wrong = MISTAKES[question]
    assert solutions[question].count(right) == 1, f"update grading_mistakes.MISTAKES[{question!r}]"
    submissions = {
        "untouched": json.loads(released.read_text(encoding="utf-8")),
        "wrong": _with_answers(released, {**solutions, question: solutions[question].replace(right, wrong)}),
    }
    for name, nb in submissions.items():
        folder = course / "submitted" / name / CHAPTER
        folder.mkdir(parents=True)
        (folder / f"{CHAPTER}.ipynb").write_text(json.dumps(nb, indent=1), encoding="utf-8")
        shutil.copy(course / "submitted" / student / CHAPTER / "timestamp.txt", folder)

    _nbgrader("autograde", CHAPTER, "--create", cwd=course, exchange=exchange)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        scores = {s.student_id: {g.name: g.score for nb in s.notebooks for g in nb.grades}
                  for s in gradebook.assignment_submissions(CHAPTER)}
    full = student_edition.POINTS_PER_CODING_EXERCISE
    checks = {f"check_{q}" for q in solutions}
    assert scores[student] == dict.fromkeys(checks, full), scores
    assert scores["untouched"] == dict.fromkeys(checks, 0), scores
    assert scores["wrong"] == {c: 0 if c == f"check_{question}" else full for c in checks}, scores
