"""nbgrader users can grade the student edition as it is: its answer and check cells carry nbgrader's cell
metadata, and nbgrader's own validator accepts every notebook.

nbgrader pulls in JupyterLab, so it is in the ``[instructor]`` extra and these tests are selected with
``-m instructor`` after installing it (CI does).
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

import student_edition

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.instructor


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory):
    out = tmp_path_factory.mktemp("student") / "edition"
    out.mkdir()
    student_edition.write_edition(out)
    return sorted((out / "book").glob("[0-9][0-9]_*.ipynb"))


def _graded_cells(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if "nbgrader" in c["metadata"]]


def test_nbgraders_validator_accepts_every_student_notebook(notebooks):
    from nbgrader.nbgraderformat import MetadataValidator

    validator = MetadataValidator()
    for path in notebooks:
        validator.validate_nb(nbformat.read(path, as_version=4))


def test_every_stub_is_an_answer_cell_followed_by_its_graded_check(notebooks):
    pairs = 0
    for path in notebooks:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for i, cell in enumerate(cells):
            meta = cell["metadata"].get("nbgrader")
            if not meta or not meta["solution"]:
                continue
            assert "raise NotImplementedError" in "".join(cell["source"])
            assert not meta["grade"] and not meta["locked"]
            check = cells[i + 1]["metadata"].get("nbgrader")
            assert check and check["grade"] and check["locked"] and not check["solution"], (path.name, i)
            assert check["points"] == student_edition.POINTS_PER_CODING_EXERCISE
            assert check["grade_id"] == f"check_{meta['grade_id']}"
            pairs += 1
    assert pairs >= 11, f"only {pairs} graded coding exercises in the student edition"


def test_a_broken_cell_is_refused_by_the_validator():
    # The validator must be able to fail: a graded cell without points is refused.
    from nbgrader.nbgraderformat import MetadataValidator, ValidationError

    cell = nbformat.v4.new_code_cell("x = 1")
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "grade_id": "x",
                                 "schema_version": 3}
    with pytest.raises(ValidationError):
        MetadataValidator().validate_cell(cell)
