"""Print a built edition of the book to one PDF, as a lecturer hands it out.

    python tools/book_pdf.py SITE_DIR OUTPUT.pdf [--solutions open|absent]

Chromium prints every page of the table of contents from the built site (served locally, no network) with
the site's print style, then ``pdfunite`` (poppler-utils) joins them in order. With ``--solutions open`` (the
instructor edition) every folded solution and hidden cell is printed open; with ``absent`` (the student
edition) there must be none to open. The browser's own "print" of a page would fold the solutions away and
cut long code lines at the margin.

Before printing, each page is measured in its print layout: the tool stops, naming the page and the block,
if a code block, an output or an equation is wider than the printed column, or if a formula is still TeX.
It writes beside the PDF a JSON list of what each page printed (figures, solutions), and
``tests/test_book_pdf.py`` checks the PDF against it (text, figures, solutions, page count).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import yaml

import student_edition

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PAPER_WIDTH_PX = round(190 / 25.4 * 96)  # A4's 210 mm less two 10 mm margins, at CSS's 96 px per inch

OPEN_FOLDS_JS = """() => {
    document.querySelectorAll('details').forEach(d => d.open = true);
    document.querySelectorAll('button.toggle-button').forEach(b => {
        if (b.getAttribute('aria-expanded') !== 'true') b.click();
    });
    document.querySelectorAll('.toggle-hidden').forEach(e => e.classList.remove('toggle-hidden'));
    return document.querySelectorAll('div.solution, .cell.tag_solution').length;
}"""

WAIT_FOR_MATHS_JS = """async () => {
    if (window.MathJax && MathJax.startup) {
        await MathJax.startup.promise;
        if (MathJax.typesetPromise) await MathJax.typesetPromise();
    }
    await Promise.race([Promise.all(document.getAnimations().map(a => a.finished.catch(() => null))),
                        new Promise(done => setTimeout(done, 5000))]);
}"""

# What would be lost on paper: a block wider than the printed column (paper does not scroll), or raw TeX.
PRINT_PROBLEMS_JS = """() => {
    const found = [];
    const article = document.querySelector('article.bd-article');
    if (!article) return ['no article on the page'];
    const column = article.getBoundingClientRect().right + 1;
    const blocks = 'pre, div.math, mjx-container[display="true"], table';
    article.querySelectorAll(blocks + ', mjx-container, .cell_output img').forEach(e => {
        if (!e.checkVisibility()) return;
        const scrolls = e.matches(blocks) && e.scrollWidth > e.clientWidth + 1;
        const tooWide = scrolls || e.getBoundingClientRect().right > column;
        if (tooWide) found.push(`${e.tagName.toLowerCase()} wider than the page: ` + e.textContent.trim().slice(0, 50));
    });
    article.querySelectorAll('img').forEach(img => {
        if (!img.complete || img.naturalWidth === 0)
            found.push('figure not loaded: ' + (img.alt || img.src).slice(0, 50));
    });
    article.querySelectorAll('span.math, div.math').forEach(m => {
        if (m.checkVisibility() && !m.querySelector('mjx-container'))
            found.push('untypeset maths: ' + m.textContent.trim().slice(0, 50));
    });
    return found;
}"""


def toc_pages(root: Path) -> list[str]:
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [chapter["file"] for chapter in part.get("chapters", [])]
    return pages


def edition_pages(root: Path, solutions: str) -> list[str]:
    """The pages an edition prints: the student edition (solutions absent) has no instructor-only pages."""
    pages = toc_pages(root)
    if solutions == "absent":
        pages = [page for page in pages if page not in student_edition.INSTRUCTOR_ONLY_PAGES]
    return pages


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def print_book(site: Path, output: Path, solutions: str, pages: list[str]) -> None:
    from playwright.sync_api import sync_playwright

    if not (site / "index.html").exists():
        raise SystemExit(f"{site} holds no built site (no index.html): build it with jupyter-book first")
    if shutil.which("pdfunite") is None:
        raise SystemExit("pdfunite is missing: install poppler-utils (CI does)")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    problems: list[str] = []
    parts: list[Path] = []
    printed: list[dict] = []
    with tempfile.TemporaryDirectory() as scratch, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        # Measured as printed: A4 less 10 mm margins is 190 mm, 718 CSS px, and the print style hides the
        # sidebars, so the page is laid out at that width.
        context = browser.new_context(viewport={"width": PAPER_WIDTH_PX, "height": 1000})
        page = context.new_page()
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
            (f"http://127.0.0.1:{server.server_port}/", "data:", "blob:")) else route.abort())
        for number, name in enumerate(pages):
            page.goto(f"http://127.0.0.1:{server.server_port}/{name}.html", wait_until="networkidle")
            answers = page.evaluate(OPEN_FOLDS_JS)
            if solutions == "absent" and answers:
                problems.append(f"{name}: {answers} solutions in an edition that must have none")
            page.evaluate(WAIT_FOR_MATHS_JS)
            page.emulate_media(media="print")
            problems += [f"{name}: {p}" for p in page.evaluate(PRINT_PROBLEMS_JS)]
            printed.append({"page": name, "solutions": answers,
                            "figures": page.evaluate("() => document.querySelectorAll('article img').length")})
            part = Path(scratch) / f"{number:03d}.pdf"
            page.pdf(path=str(part), format="A4", print_background=True,
                     margin={"top": "14mm", "bottom": "14mm", "left": "10mm", "right": "10mm"})
            page.emulate_media(media="screen")
            parts.append(part)
        browser.close()
        if problems:
            raise SystemExit("the printed book would lose content:\n  " + "\n  ".join(problems[:40]))
        output.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["pdfunite", *map(str, parts), str(output)], check=True)
    # What was printed, for tests/test_book_pdf.py to hold the PDF to: each page's figures and solutions.
    output.with_suffix(".json").write_text(json.dumps(printed, indent=1) + "\n", encoding="utf-8")
    server.shutdown()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("site", type=Path, help="a built site: _build/html, or the student edition's")
    parser.add_argument("output", type=Path)
    parser.add_argument("--solutions", choices=["open", "absent"], default="open")
    args = parser.parse_args(argv)
    print_book(args.site.resolve(), args.output, args.solutions, edition_pages(ROOT, args.solutions))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
