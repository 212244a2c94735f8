"""Every derivation exercise has a points value and a marking scheme, and the instructors page adds them up.

``book/marking.md`` (instructor edition only) holds one scheme per exercise that is marked by hand: a line
``{ref}`label`: **N points**`` and bullets ``- **k** for ...`` whose ``k`` add up to ``N``. Coding exercises are
marked by Otter-Grader (``tools/otter_assign.py``), ``POINTS_PER_CODING_EXERCISE`` each; one that also asks for a
derivation (``CODING_WITH_A_DERIVATION``) has a scheme too, for that answer, and counts as marked by hand as well.
The points table on ``book/instructors.md`` must equal both, chapter by chapter. A scheme's ``Common slip`` line
deducts exactly the points of the steps it names, since the deduction replaces those steps.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import student_edition

ROOT = Path(__file__).resolve().parents[1]


CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
EXERCISE = re.compile(r"^:::\{exercise\}\s*(.*)\n:label:\s*(\S+)", re.MULTILINE)
# A scheme runs from its line to the next scheme or heading (its bullets may hold display maths).
SCHEME = re.compile(r"^\{ref\}`([^`]+)`: \*\*(\d+) points\*\*\n\n(- .*?)(?=^\{ref\}|^#|\Z)", re.MULTILINE | re.DOTALL)
STEP = re.compile(r"^- \*\*(\d+)\*\* for\b", re.MULTILINE)
# Coding exercises whose prompt also asks for a derivation: Otter marks the code, a teaching assistant the answer.
CODING_WITH_A_DERIVATION = {"ex-code-reparam-sample"}


def _exercises(path: Path) -> list[tuple[str, str]]:
    """(label, title) of every exercise of a chapter, in order."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return [(label, title) for title, label in EXERCISE.findall(text)]


def _schemes() -> dict[str, tuple[int, str]]:
    text = (ROOT / "book" / "marking.md").read_text(encoding="utf-8")
    found = SCHEME.findall(text)
    labels = [label for label, _, _ in found]
    assert len(labels) == len(set(labels)), "an exercise has two marking schemes"
    starts = re.findall(r"^\{ref\}`", text, re.MULTILINE)
    assert len(found) == len(starts), "a scheme is not in the form `{ref}`label`: **N points**` + bullets"
    return {label: (int(points), bullets) for label, points, bullets in found}


def _hand_marked(path: Path) -> list[str]:
    return [label for label, title in _exercises(path)
            if not title.startswith("Coding:") or label in CODING_WITH_A_DERIVATION]


def _coding(path: Path) -> list[str]:
    return [label for label, title in _exercises(path) if title.startswith("Coding:")]


def test_the_coding_exercises_with_a_derivation_exist():
    coding = {label for path in CHAPTERS for label in _coding(path)}
    assert coding >= CODING_WITH_A_DERIVATION, f"not coding exercises: {sorted(CODING_WITH_A_DERIVATION - coding)}"


def test_every_hand_marked_exercise_has_one_scheme_in_book_order():
    schemes = _schemes()
    expected = [label for path in CHAPTERS for label in _hand_marked(path)]
    assert len(expected) >= 30
    assert list(schemes) == expected, (
        f"missing {sorted(set(expected) - set(schemes))}, not exercises {sorted(set(schemes) - set(expected))}")


@pytest.mark.parametrize("label", [label for path in CHAPTERS for label in _hand_marked(path)])
def test_the_steps_of_a_scheme_add_up_to_its_points(label):
    points, bullets = _schemes()[label]
    steps = [int(k) for k in STEP.findall(bullets)]
    assert 2 <= points <= 6 and len(steps) >= 2, (label, points, steps)
    assert sum(steps) == points, f"{label}: steps {steps} add up to {sum(steps)}, not {points}"


# "deduct N (steps ...)": N must be the points of the steps named, "1 of step 2" counting 1 of that step's points.
DEDUCTION = re.compile(r"deduct (\d+) \(([^):]*)[:)]")


def _spoilt_points(refs: str, steps: list[int]) -> int:
    total = 0
    for part in re.split(r",\s*(?:and\s+)?|\s+and\s+", refs.strip()):
        part = re.sub(r"^steps? ", "", part.strip())
        if match := re.fullmatch(r"(\d+) of step (\d+)", part):
            points, step = int(match[1]), int(match[2])
            assert points < steps[step - 1], f"{part!r}: step {step} is worth {steps[step - 1]}"
            total += points
        elif match := re.fullmatch(r"(\d+) to (\d+)", part):
            total += sum(steps[int(match[1]) - 1:int(match[2])])
        else:
            assert re.fullmatch(r"\d+", part), f"cannot read {part!r} in ({refs})"
            total += steps[int(part) - 1]
    return total


@pytest.mark.parametrize("label", [label for path in CHAPTERS for label in _hand_marked(path)])
def test_a_common_slip_deducts_the_points_of_the_steps_it_spoils(label):
    # The page's rule: a deduction replaces the steps the slip spoils, never comes on top of them.
    _, bullets = _schemes()[label]
    steps = [int(k) for k in STEP.findall(bullets)]
    for line in re.findall(r"^- Common slip:.*$", bullets, re.MULTILINE):
        deductions = DEDUCTION.findall(line)
        assert deductions, f"{label}: a common slip must say `deduct N (step k)`: {line}"
        for points, refs in deductions:
            assert int(points) == _spoilt_points(refs, steps), f"{label}: deduct {points} ({refs}), steps {steps}"


def _points_table() -> dict[int, list[str]]:
    text = (ROOT / "book" / "instructors.md").read_text(encoding="utf-8")
    section = text[text.index("## Points"):]
    section = section[:section.index("\n## ", 1)]
    rows = re.findall(r"^\| (\d)\. .*?\|(.*)\|\s*$", section, re.MULTILINE)
    return {int(n): [cell.strip() for cell in rest.split("|")] for n, rest in rows}


def test_the_instructors_points_table_adds_up():
    schemes = _schemes()
    table = _points_table()
    assert sorted(table) == list(range(1, len(CHAPTERS) + 1))
    coding_points = student_edition.POINTS_PER_CODING_EXERCISE
    for n, path in enumerate(CHAPTERS, start=1):
        hand = sum(schemes[label][0] for label in _hand_marked(path))
        coding = coding_points * len(_coding(path))
        assert table[n] == [f"{len(_hand_marked(path))} ({hand} points)", f"{len(_coding(path))} ({coding} points)",
                            str(hand + coding)], f"chapter {n}'s row"


def test_the_marking_schemes_stay_out_of_the_student_edition(tmp_path):
    student_edition.write_edition(tmp_path)
    assert not list((tmp_path / "book").glob("marking.*"))
    assert "book/marking" not in (tmp_path / "_toc.yml").read_text(encoding="utf-8")
    assert "marking" not in (tmp_path / "book" / "instructors.md").read_text(encoding="utf-8")
