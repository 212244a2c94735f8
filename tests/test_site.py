"""The built website as a reader meets it: every page loaded in headless Chromium, with no network.

Run after the book is built (CI does):

    jupyter-book build . -W -n --keep-going
    python -m pytest -m browser            # the site in _build/html, or LVM_SITE=path/to/html

These tests are deselected from the plain ``python -m pytest`` (they need a built site and a browser);
selected with ``-m browser``, a missing site or browser is a failure, not a skip. Each page is checked at a
desktop (1280 px) and a phone (412 px) width, with every folded solution opened, and a full-page screenshot
of the desktop view goes to ``_build/screenshots/``.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlparse

import pytest
import yaml

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("LVM_SITE", ROOT / "_build" / "html")).resolve()
SCREENSHOTS = Path(os.environ.get("LVM_SCREENSHOTS", ROOT / "_build" / "screenshots"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WIDTHS = {"desktop": 1280, "phone": 412}
# What TeX left on a page looks like when MathJax did not typeset it.
RAW_TEX = re.compile(r"\$\$|\\frac|\\begin\{|\\bm\{|\\underbrace|\\mathcal|\\sum_|\\int_|\\left[(|\[]")
COLAB = re.compile(r"^https://colab\.research\.google\.com/github/([\w.-]+)/([\w.-]+)/blob/([\w./-]+?)/"
                   r"(book/[\w.-]+\.ipynb)$")


def toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [chapter["file"] for chapter in part.get("chapters", [])]
    return pages


PAGES = toc_pages()


def plotting_cells(page: str) -> int:
    """Code cells of a chapter that draw a figure (they call ``plt.show()``): each must show an image."""
    path = ROOT / f"{page}.ipynb"
    if not path.exists():
        return 0
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return sum("plt.show()" in "".join(c["source"]) for c in cells if c["cell_type"] == "code")


@pytest.fixture(scope="module")
def server():
    if not (SITE / "index.html").exists():
        pytest.fail(f"no built site at {SITE}: run `jupyter-book build .` first (or set LVM_SITE)")
    handler = functools.partial(QuietHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the test reports what matters; the access log is noise
        pass


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright  # a test dependency: missing, the test errors

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: apt-get install chromium (CI does)")
    with sync_playwright() as p:
        # No background traffic: every request a page makes is one the page asked for.
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        yield browser
        browser.close()


class PageVisit:
    """One page loaded at one width, with every request and console message it produced."""

    def __init__(self, browser, url: str, width: int):
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.page = self.context.new_page()
        self.outside: list[str] = []
        self.console_errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        self.page.on("pageerror", lambda e: self.console_errors.append(str(e)))
        self.page.route("**/*", self._only_local)
        self.page.goto(url, wait_until="load")
        self.page.wait_for_load_state("networkidle")
        self.shown_answers = self.page.evaluate(SHOWN_ANSWERS_JS)  # before a student clicks anything
        self.open_folds()
        self.wait_for_maths()

    def _only_local(self, route):
        host = urlparse(route.request.url).hostname
        if host == "127.0.0.1" or route.request.url.startswith(("data:", "blob:", "about:")):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def open_folds(self):
        # Folded solutions and hidden code are sphinx-togglebutton toggles or <details>: open them all, as a
        # student who clicks every "Show solution" would.
        self.page.evaluate("""() => {
            document.querySelectorAll('details').forEach(d => d.open = true);
            document.querySelectorAll('button.toggle-button').forEach(b => {
                if (b.getAttribute('aria-expanded') !== 'true') b.click();
            });
            document.querySelectorAll('.toggle-hidden').forEach(e => e.classList.remove('toggle-hidden'));
        }""")

    def wait_for_maths(self):
        self.page.evaluate("""async () => {
            if (!window.MathJax || !MathJax.startup) return;
            await MathJax.startup.promise;
            if (MathJax.typesetPromise) await MathJax.typesetPromise();
        }""")

    def close(self):
        self.context.close()


@pytest.fixture(scope="module")
def visits(server, browser):
    """Every page at every width, loaded once; desktop screenshots saved on the way."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    loaded = {}
    for page_name in PAGES:
        for label, width in WIDTHS.items():
            visit = PageVisit(browser, urljoin(server, f"{page_name}.html"), width)
            if label == "desktop":
                visit.page.screenshot(path=str(SCREENSHOTS / f"{Path(page_name).name}.png"), full_page=True)
            loaded[page_name, label] = {
                "outside": visit.outside,
                "shown_answers": visit.shown_answers,
                "console_errors": visit.console_errors,
                "images": visit.page.evaluate("""() => [...document.querySelectorAll('article img')]
                    .map(i => ({src: i.getAttribute('src'), width: i.naturalWidth}))"""),
                "raw_tex": visit.page.evaluate(RAW_TEX_JS, RAW_TEX.pattern),
                "mathjax_errors": visit.page.evaluate("""() => [...document.querySelectorAll(
                    'mjx-merror, .MathJax_Error, mjx-container [data-mjx-error]')]
                    .map(e => e.getAttribute('data-mjx-error') || e.textContent).slice(0, 5)"""),
                "links": visit.page.evaluate("""() => [...document.querySelectorAll('a[href]')]
                    .map(a => a.href)"""),
                "overflow": visit.page.evaluate(OVERFLOW_JS),
            }
            visit.close()
    return loaded


# Answers a reader sees without clicking: the code of a `solution` cell, or the body of a {solution}.
SHOWN_ANSWERS_JS = """() => {
    // checkVisibility, not offsetParent: a closed <details> hides its content with content-visibility.
    const visible = e => e && e.checkVisibility({visibilityProperty: true, opacityProperty: true})
                         && e.getBoundingClientRect().height > 0;
    const found = [];
    document.querySelectorAll('.cell.tag_solution .cell_input pre').forEach(pre => {
        if (visible(pre)) found.push('code: ' + pre.textContent.trim().slice(0, 60));
    });
    document.querySelectorAll('div.solution').forEach(box => {
        const body = [...box.children].filter(c => !c.classList.contains('admonition-title'));
        if (body.some(visible)) found.push('solution: ' + (box.id || box.textContent.trim().slice(0, 60)));
    });
    return found;
}"""

# Text nodes outside code, scripts and typeset maths that still look like TeX.
RAW_TEX_JS = """(pattern) => {
    const re = new RegExp(pattern);
    const skip = 'SCRIPT, STYLE, PRE, CODE, MJX-CONTAINER, TEXTAREA, .highlight, .cell_output .output';
    const walker = document.createTreeWalker(document.querySelector('article') || document.body,
                                             NodeFilter.SHOW_TEXT);
    const found = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const parent = node.parentElement;
        if (!parent || parent.closest(skip)) continue;
        if (re.test(node.textContent)) found.push(node.textContent.trim().slice(0, 120));
    }
    return found.slice(0, 10);
}"""

# Display equations that stick out of the article column and are not inside a box that scrolls.
OVERFLOW_JS = """() => {
    const column = document.querySelector('article.bd-article') || document.querySelector('article');
    if (!column) return [];
    const right = column.getBoundingClientRect().right + 1;
    const found = [];
    for (const eq of document.querySelectorAll('mjx-container[display="true"]')) {
        const box = eq.getBoundingClientRect();
        if (box.width === 0) continue;
        let scroller = eq.parentElement;
        while (scroller && scroller !== column) {
            const overflow = getComputedStyle(scroller).overflowX;
            if ((overflow === 'auto' || overflow === 'scroll')) break;
            scroller = scroller.parentElement;
        }
        const contained = scroller && scroller !== column && scroller.getBoundingClientRect().right <= right;
        const inner = eq.querySelector('mjx-math') || eq;
        if (inner.getBoundingClientRect().right > right && !contained) {
            found.push((eq.closest('[id]') || {}).id || eq.textContent.slice(0, 60));
        }
    }
    return found;
}"""


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_nothing_from_outside_and_logs_no_error(visits, page):
    for label in WIDTHS:
        visit = visits[page, label]
        assert visit["outside"] == [], f"{page} requested from outside 127.0.0.1: {visit['outside'][:5]}"
        assert visit["console_errors"] == [], f"{page} logged errors: {visit['console_errors'][:5]}"


@pytest.mark.parametrize("page", PAGES)
def test_answers_are_folded_until_the_reader_opens_them(visits, page):
    for label in WIDTHS:
        shown = visits[page, label]["shown_answers"]
        assert shown == [], f"{page} at {WIDTHS[label]} px shows answers unfolded: {shown[:5]}"


@pytest.mark.parametrize("page", PAGES)
def test_every_plotting_cell_shows_its_figure(visits, page):
    images = visits[page, "desktop"]["images"]
    broken = [i["src"][:80] for i in images if i["width"] == 0]
    assert broken == [], f"{page}: images that did not load: {broken}"
    expected = plotting_cells(page)
    assert len(images) >= expected, f"{page}: {len(images)} rendered images for {expected} plotting cells"


@pytest.mark.parametrize("page", PAGES)
def test_maths_is_typeset_everywhere_including_folded_solutions(visits, page):
    visit = visits[page, "desktop"]
    assert visit["raw_tex"] == [], f"{page}: untypeset TeX on the page: {visit['raw_tex']}"
    assert visit["mathjax_errors"] == [], f"{page}: MathJax errors: {visit['mathjax_errors']}"


@pytest.mark.parametrize("page", PAGES)
def test_display_equations_fit_or_scroll(visits, page):
    for label in WIDTHS:
        overflowing = visits[page, label]["overflow"]
        assert overflowing == [], f"{page} at {WIDTHS[label]} px: equations stick out: {overflowing}"


def _ids(html_file: Path) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', html_file.read_text(encoding="utf-8")))


@pytest.mark.parametrize("page", PAGES)
def test_internal_links_and_anchors_resolve(visits, server, page):
    broken = []
    for href in visits[page, "desktop"]["links"]:
        if not href.startswith(server):
            continue
        target, fragment = urldefrag(href)
        path = SITE / unquote(urlparse(target).path).lstrip("/")
        if path.is_dir():
            path = path / "index.html"
        if not path.exists():
            broken.append(href)
        elif fragment and path.suffix == ".html" and unquote(fragment) not in _ids(path):
            broken.append(href)
    assert broken == [], f"{page}: broken links: {sorted(set(broken))[:10]}"


@pytest.mark.parametrize("page", [p for p in PAGES if (ROOT / f"{p}.ipynb").exists()])
def test_colab_link_opens_this_notebook(visits, page):
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    owner, repo = urlparse(config["repository"]["url"]).path.strip("/").split("/")[:2]
    links = [h for h in visits[page, "desktop"]["links"] if "colab.research.google.com" in h]
    assert links, f"{page}: no Colab button"
    for link in links:
        match = COLAB.match(link)
        assert match, f"{page}: malformed Colab link {link}"
        assert match.groups() == (owner, repo, config["repository"]["branch"], f"{page}.ipynb"), link
