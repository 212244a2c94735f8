"""The whole-book PDFs that tools/book_pdf.py prints from the built editions, as a lecturer hands them out.

CI prints both editions after building them (``-m pdf``): every formula typeset (no TeX left in the text),
every figure present, the instructor PDF with every solution and the student PDF with none, a sane page
count. That no code line, output or equation is cut at the margin is checked by the tool before it prints
(it measures each page in its print layout); the last test here shows that this check can fail.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import book_pdf

ROOT = Path(__file__).resolve().parents[1]

PDF_DIR = Path(os.environ.get("LVM_PDF_DIR", ROOT / "_build" / "pdf"))
EDITIONS = {"instructor": PDF_DIR / "lvm-course-instructor.pdf", "student": PDF_DIR / "lvm-course-student.pdf"}

pytestmark = pytest.mark.pdf


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout


def printed(edition: str) -> tuple[Path, list[dict]]:
    path = EDITIONS[edition]
    if not path.exists():
        pytest.fail(f"no {path}: CI prints it with tools/book_pdf.py after building the {edition} edition")
    return path, json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("edition", EDITIONS)
def test_every_formula_is_typeset_and_every_page_printed(edition):
    path, pages = printed(edition)
    solutions = {"instructor": "open", "student": "absent"}[edition]
    assert [p["page"] for p in pages] == book_pdf.edition_pages(ROOT, solutions)
    # The instructor-only pages (the marking schemes) are printed in the instructor's PDF alone.
    assert ("book/marking" in [p["page"] for p in pages]) == (edition == "instructor")
    text = pdf_text(path)
    # Unrendered MyST maths keeps its delimiters; code cells use matplotlib's $...$, which these miss.
    raw = re.findall(r".{0,30}(?:\\\(|\\\[|\$\$|\\begin\{).{0,30}", text)
    assert raw == [], f"raw TeX in the {edition} PDF: {raw[:5]}"
    count = int(re.search(r"Pages:\s+(\d+)", subprocess.run(["pdfinfo", str(path)], capture_output=True,
                                                              text=True, check=True).stdout).group(1))
    assert 150 <= count <= 800, f"the {edition} PDF has {count} pages"


@pytest.mark.parametrize("edition", EDITIONS)
def test_every_figure_is_in_the_pdf(edition):
    path, pages = printed(edition)
    figures = sum(p["figures"] for p in pages)
    assert figures >= 50, f"only {figures} figures were printed"
    listing = subprocess.run(["pdfimages", "-list", str(path)], capture_output=True, text=True, check=True).stdout
    images = sum(1 for line in listing.splitlines()[2:] if line.split()[2] == "image")
    assert images >= figures, f"{figures} figures printed but {images} images in the {edition} PDF"
    numbers = re.findall(r"Fig\. (\d+)\.(\d+) ", pdf_text(path))
    for chapter in range(1, 10):  # every chapter's figures, numbered 1, 2, ... without a gap
        found = sorted({int(n) for c, n in numbers if int(c) == chapter})
        assert found and found == list(range(1, found[-1] + 1)), f"chapter {chapter}'s figures: {found}"


def test_the_instructor_pdf_has_every_solution_and_the_student_pdf_none():
    instructor, pages = printed("instructor")
    assert sum(p["solutions"] for p in pages) >= 30
    assert pdf_text(instructor).count("Solution to Exercise") >= 20
    student, pages = printed("student")
    assert sum(p["solutions"] for p in pages) == 0
    text = pdf_text(student)
    assert "Solution to Exercise" not in text
    assert text.count("YOUR CODE HERE") >= 11, "each coding exercise's stub is in the student PDF"


def test_the_print_check_finds_a_cut_code_line_and_raw_tex():
    from playwright.sync_api import sync_playwright

    if shutil.which("chromium") is None and not Path(book_pdf.CHROMIUM).exists():
        pytest.fail("Chromium is missing: apt-get install chromium (CI does)")
    page_html = ('<article class="bd-article" style="width: 300px">'
                 '<pre style="white-space: pre; overflow-x: auto">' + "x = 1  # " + "long " * 40 + "</pre>"
                 '<p><span class="math">\\(p(x)\\)</span></p></article>')
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=book_pdf.CHROMIUM, args=["--no-sandbox"])
        tab = browser.new_page()
        tab.set_content(page_html)
        found = tab.evaluate(book_pdf.PRINT_PROBLEMS_JS)
        browser.close()
    assert any(f.startswith("pre wider than the page") for f in found), found
    assert any(f.startswith("untypeset maths") for f in found), found
