"""The Otter-Grader assignments grade as a lecturer needs: real ``otter run`` on the real autograder zips.

CI writes the assignments with ``python tools/otter_assign.py _build/otter`` (or set ``LVM_OTTER_DIR``) after
installing the ``[instructor]`` extra, then selects these tests with ``-m instructor``. They fail (do not skip) when
the assignments are missing. For every chapter with coding exercises:

- a student notebook answered with the reference solutions gets full marks on every question;
- the untouched student notebook gets zero on every question;
- a notebook with one plausible wrong answer in one question loses exactly that question's points, for each
  question in turn (the mistakes of ``grading_mistakes.py``, applied to the chapter's own solution, so that they
  follow its edits);
- no hidden test's source reaches the student notebook or its public tests, while the zip has it;
- the checks run in a student notebook opened alone, as from a Colab link (no ``tests/`` beside it): each
  passes on a right answer and fails on the plausible mistake.

Each run's wall time and peak memory are written to ``<LVM_OTTER_DIR>/grading-times.json``: the instructors page
quotes them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

import otter_assign

from grading_mistakes import MISTAKES

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.instructor

OTTER_DIR = Path(os.environ.get("LVM_OTTER_DIR", ROOT / "_build" / "otter"))
CHAPTERS = [p.stem for p in sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
            if otter_assign.coding_exercises(json.loads(p.read_text(encoding="utf-8")))]



def _run_sampling_memory(command: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, int, int]:
    """Run ``command``; return it finished, with the peaks (bytes) of its whole process tree's memory (what a
    grader's container must hold: Otter and the kernel it starts, together) and of its largest process,
    sampled every 0.05 s, so brief peaks between samples can be missed."""
    import psutil

    process = subprocess.Popen(command, cwd=cwd, env={**os.environ, "OMP_NUM_THREADS": "1"},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watched, tree_peak, largest = psutil.Process(process.pid), 0, 0
    while process.poll() is None:
        try:
            sizes = [p.memory_info().rss for p in [watched, *watched.children(recursive=True)]]
        except psutil.Error:  # a process ended between listing and reading
            continue
        tree_peak, largest = max(tree_peak, sum(sizes)), max(largest, *sizes)
        time.sleep(0.05)
    stdout, stderr = process.communicate()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr), tree_peak, largest


def _dist(stem: str) -> Path:
    dist = OTTER_DIR / stem / "dist"
    assert dist.is_dir(), f"{dist} is missing: run `python tools/otter_assign.py {OTTER_DIR}` first"
    return dist


def _zip(stem: str) -> Path:
    (path,) = (_dist(stem) / "autograder").glob("*-autograder_*.zip")
    return path


def _questions(stem: str) -> list[str]:
    nb = json.loads((ROOT / "book" / f"{stem}.ipynb").read_text(encoding="utf-8"))
    return [ex.name for ex in otter_assign.coding_exercises(nb)]


def _grade(stem: str, notebook: dict, tmp_path: Path, label: str) -> dict[str, tuple[float, float]]:
    """Run ``otter run`` on a submission; return each question's (score, max score)."""
    submission = tmp_path / f"{stem}.ipynb"
    submission.write_text(json.dumps(notebook), encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    otter = ["otter", "run", "-a", str(_zip(stem)), "-o", str(out), "--no-logo", str(submission)]
    start = time.perf_counter()
    run, tree_peak, largest = _run_sampling_memory(otter, tmp_path)
    seconds = time.perf_counter() - start
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    _record(stem, label, seconds, tree_peak, largest)
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return {t["name"]: (t["score"], t["max_score"]) for t in results["tests"] if t["name"] != "Public Tests"}


def _record(stem: str, label: str, seconds: float, tree_peak: int, largest: int) -> None:
    path = OTTER_DIR / "grading-times.json"
    times = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    times.setdefault(stem, {})[label] = {"seconds": round(seconds, 1), "all_processes_mib": round(tree_peak / 2**20),
                                         "largest_process_mib": round(largest / 2**20)}
    path.write_text(json.dumps(times, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def _notebook(stem: str, edition: str) -> dict:
    return json.loads((_dist(stem) / edition / f"{stem}.ipynb").read_text(encoding="utf-8"))


def test_every_question_has_a_mistake_to_grade():
    questions = {q for stem in CHAPTERS for q in _questions(stem)}
    assert len(questions) >= 11 and questions == set(MISTAKES), (
        "each coding exercise needs one plausible mistake in MISTAKES: "
        f"missing {sorted(questions - set(MISTAKES))}, stale {sorted(set(MISTAKES) - questions)}")


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _answered(stem: str, mistake: str | None = None) -> dict:
    """What a student submits: the student notebook with each answer written, as the reference solution, or with
    the plausible mistake of ``MISTAKES[mistake]`` in that question."""
    nb = _notebook(stem, "student")
    solutions = _notebook(stem, "autograder")
    for question in _questions(stem):
        def defines(cell: dict, name: str = question) -> bool:
            return cell["cell_type"] == "code" and bool(re.search(rf"^def {name}\(", _source(cell), re.MULTILINE))
        theirs = [c for c in nb["cells"] if defines(c)]
        ours = [c for c in solutions["cells"] if defines(c)]
        assert len(theirs) == len(ours) == 1, f"no single answer cell defines {question}"
        answer = _source(ours[0])
        if question == mistake:
            right, wrong = MISTAKES[question]
            assert answer.count(right) == 1, f"the solution of {question} no longer contains {right!r}: update MISTAKES"
            answer = answer.replace(right, wrong)
        theirs[0]["source"] = answer
    return nb


@pytest.mark.parametrize("stem", CHAPTERS)
def test_solutions_get_full_marks(stem, tmp_path):
    scores = _grade(stem, _answered(stem), tmp_path, "solutions")
    assert set(scores) == set(_questions(stem))
    assert all(score == best == otter_assign.POINTS_PER_QUESTION for score, best in scores.values()), scores


@pytest.mark.parametrize("stem", CHAPTERS)
def test_untouched_student_notebook_gets_zero(stem, tmp_path):
    scores = _grade(stem, _notebook(stem, "student"), tmp_path, "untouched")
    assert set(scores) == set(_questions(stem))
    assert all(score == 0 for score, _ in scores.values()), scores


@pytest.mark.parametrize("stem, question", [(s, q) for s in CHAPTERS for q in _questions(s)])
def test_one_wrong_answer_loses_exactly_its_question(stem, question, tmp_path):
    scores = _grade(stem, _answered(stem, mistake=question), tmp_path, f"wrong {question}")
    full = otter_assign.POINTS_PER_QUESTION
    assert scores == {q: (0.0 if q == question else full, full) for q in _questions(stem)}, scores


@pytest.mark.parametrize("stem", CHAPTERS)
def test_checks_run_in_a_student_notebook_opened_alone(stem, tmp_path):
    # As a Colab link opens it: no tests/ folder beside it. Otter reads its tests from ./tests only (it
    # downloads them from a URL only under JupyterLite), so the init cell must write them. Otter's own
    # `%pip install` cell is left out: the test machine has Otter, and no network.
    import nbformat
    from nbclient import NotebookClient

    first = _questions(stem)[0]
    nb = _answered(stem, mistake=first)
    nb["cells"] = [c for c in nb["cells"] if not _source(c).startswith("%pip")]
    notebook = nbformat.reads(json.dumps(nb), as_version=4)
    NotebookClient(notebook, timeout=600, allow_errors=True, resources={"metadata": {"path": str(tmp_path)}},
                   ).execute()
    feedback = {}
    for cell in notebook.cells:
        checked = re.fullmatch(r'grader\.check\("(\w+)"\)', cell.source.strip())
        if checked:
            feedback[checked.group(1)] = "".join(o.get("data", {}).get("text/plain", "") for o in cell.outputs)
    assert set(feedback) == set(_questions(stem)), feedback
    assert "Test case failed" in feedback[first], feedback[first]  # the mistake is caught by its check
    for question, text in feedback.items():
        if question != first:
            assert "All test cases passed" in text, (question, text)
    assert sorted(p.name for p in (tmp_path / "tests").glob("*.py")) == sorted(f"{q}.py" for q in _questions(stem))


@pytest.mark.parametrize("stem", CHAPTERS)
def test_no_hidden_test_reaches_the_student(stem):
    dist = _dist(stem)
    hidden = [f"{q}_other_cases" for q in _questions(stem)]
    with zipfile.ZipFile(_zip(stem)) as z:
        graded = "".join(z.read(n).decode() for n in z.namelist() if n.startswith("tests/"))
    assert all(name in graded for name in hidden), "the autograder zip lacks the hidden tests"
    student = (dist / "student" / f"{stem}.ipynb").read_text(encoding="utf-8")
    student += "".join(p.read_text(encoding="utf-8") for p in (dist / "student" / "tests").glob("*.py"))
    for name in hidden:
        assert name not in student
    for seed in otter_assign.HIDDEN_SEEDS:
        assert str(seed) not in student
    assert "# BEGIN SOLUTION" not in student and "YOUR CODE HERE" in student
